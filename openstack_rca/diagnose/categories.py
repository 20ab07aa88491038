"""Which component is at fault, and its category, from the root-cause line.

Rules look at the text an operator would read (service, logger, message) in a fixed order: the specific cause
before the generic carrier. "No space left on device" inside a nova-compute spawn error is resource exhaustion,
not compute; a QueuePool timeout in nova-conductor is the database, not messaging.
"""

from __future__ import annotations

import re

CATEGORIES = (
    "network", "compute", "storage", "image", "identity", "messaging", "database", "scheduling",
    "resource_exhaustion",
)

# (pattern, component or None = the service that logged it, category)
_RULES: tuple[tuple[re.Pattern[str], str | None, str], ...] = tuple(
    (re.compile(p, re.I), comp, cat) for p, comp, cat in (
        (r"no space left|disk (is )?full|\bENOSPC\b|errno 28|out of memory|cannot allocate memory|"
         r"too many open files|quota exceeded|insufficient (disk|memory)", None, "resource_exhaustion"),
        (r"queuepool|sqlalchemy|\bdbconnectionerror\b|\bmysql\b|mariadb|galera|database|\bdb(api)?\b.*(error|timeout)",
         None, "database"),
        (r"\bamqp\b|rabbit|oslo[._]messaging|messagingtimeout|\bbroker\b|vm_memory_high_watermark|"
         r"memory resource limit alarm", "rabbitmq", "messaging"),
        (r"libvirt|\bqemu|\bkvm\b|qemuMonitor|hypervisor", "libvirt", "compute"),
        (r"novalidhost|no valid host|allocation candidates|\bplacement\b|nova[-.]scheduler", "placement", "scheduling"),
        (r"iscsi|\btgt\b|\bcinder|volume|os[-_]brick|multipath|\brbd\b|\bceph", "cinder", "storage"),
        (r"\bglance|image", "glance", "image"),
        (r"keystone|\b401\b|unauthori[sz]ed|authenticat|authoriz|\btoken\b|identity", "keystone", "identity"),
        (r"neutron|openvswitch|\bovs|ovsdb|\bvifs?\b|virtual ?interface|vif[-_ ]plug|dhcp|\bport\b.*binding"
         r"|binding_failed|network", "neutron", "network"),
    )
)

_SERVICE_FALLBACK = (
    ("neutron", "neutron", "network"), ("cinder", "cinder", "storage"), ("glance", "glance", "image"),
    ("keystone", "keystone", "identity"), ("rabbit", "rabbitmq", "messaging"), ("mysql", "mysql", "database"),
    ("placement", "placement", "scheduling"), ("libvirt", "libvirt", "compute"), ("nova", None, "compute"),
)


def classify(service: str | None, component: str | None, message: str | None) -> tuple[str, str | None]:
    """``(component, category)`` for one log record; category None when nothing says what it is."""
    service = service or "unknown"
    text = " ".join(x for x in (service, component or "", message or "") if x)
    for pattern, comp, category in _RULES:
        if pattern.search(text):
            return comp or service, category
    for prefix, comp, category in _SERVICE_FALLBACK:
        if service.startswith(prefix):
            return comp or service, category
    return service, None
