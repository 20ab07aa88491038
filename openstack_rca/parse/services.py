"""Which OpenStack service wrote a record: from the file name, the journald unit, or the logger name.

Operators name files many ways (``nova-compute.log.2.gz``, loghub's ``nova-api.log.1.2017-05-16_13:53:08``,
kubelet's ``pods/openstack_nova-compute-0_<uid>/nova-compute/0.log``, DevStack's ``devstack@n-cpu.service``);
all of them should land on the same service name so later steps can group by it.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import PurePath
from typing import Optional

# DevStack's systemd unit short names.
DEVSTACK_UNITS = {
    "n-api": "nova-api",
    "n-api-meta": "nova-api-metadata",
    "n-cpu": "nova-compute",
    "n-sch": "nova-scheduler",
    "n-cond": "nova-conductor",
    "n-super-cond": "nova-conductor",
    "n-cond-cell1": "nova-conductor",
    "n-novnc": "nova-novncproxy",
    "n-novnc-cell1": "nova-novncproxy",
    "placement-api": "placement-api",
    "q-svc": "neutron-server",
    "q-agt": "neutron-openvswitch-agent",
    "q-dhcp": "neutron-dhcp-agent",
    "q-l3": "neutron-l3-agent",
    "q-meta": "neutron-metadata-agent",
    "q-ovn-metadata-agent": "neutron-ovn-metadata-agent",
    "c-api": "cinder-api",
    "c-vol": "cinder-volume",
    "c-sch": "cinder-scheduler",
    "c-bak": "cinder-backup",
    "g-api": "glance-api",
    "keystone": "keystone",
}

_PROJECTS = (
    "nova", "neutron", "cinder", "glance", "keystone", "placement", "heat", "octavia", "horizon", "swift",
    "ironic", "designate", "barbican", "manila", "magnum", "aodh", "ceilometer", "gnocchi", "masakari",
)
_INFRA = {
    "rabbit": "rabbitmq", "rabbitmq": "rabbitmq", "rabbitmq-server": "rabbitmq", "mysql": "mysql",
    "mysqld": "mysql", "mariadb": "mysql", "libvirtd": "libvirtd", "libvirt": "libvirtd", "qemu": "libvirtd",
    "ovs-vswitchd": "ovs-vswitchd", "openvswitch": "ovs-vswitchd", "memcached": "memcached", "haproxy": "haproxy",
    "httpd": "httpd", "apache2": "httpd", "keepalived": "keepalived", "ovsdb-server": "ovsdb-server",
}

# Logger prefix -> service, most specific first.
_LOGGERS = (
    ("nova.osapi_compute", "nova-api"), ("nova.api", "nova-api"), ("nova.compute", "nova-compute"),
    ("nova.virt", "nova-compute"), ("nova.scheduler", "nova-scheduler"), ("nova.conductor", "nova-conductor"),
    ("nova.metadata", "nova-api-metadata"), ("nova.console", "nova-novncproxy"),
    ("neutron.agent.dhcp", "neutron-dhcp-agent"), ("neutron.agent.l3", "neutron-l3-agent"),
    ("neutron.agent.metadata", "neutron-metadata-agent"),
    ("neutron.plugins.ml2.drivers.openvswitch.agent", "neutron-openvswitch-agent"),
    ("neutron.agent.linux", "neutron-openvswitch-agent"), ("neutron", "neutron-server"),
    ("cinder.volume", "cinder-volume"), ("cinder.scheduler", "cinder-scheduler"), ("cinder.backup", "cinder-backup"),
    ("cinder", "cinder-api"), ("glance", "glance-api"), ("keystone", "keystone"),
    ("keystonemiddleware", None), ("placement", "placement-api"), ("rabbitmq", "rabbitmq"), ("mysqld", "mysql"),
    ("libvirt.", "libvirtd"),
)

_ROTATION = re.compile(
    r"(\.(gz|gzip|bz2|bzip2|xz|lzma|zst|zstd|\d+|log|txt|out|err|previous)|[-_.]\d{4}-?\d\d-?\d\d[\w:.-]*)+$", re.I)
# openstack-helm's container and pod names that are not the service's own name (neutron-ovs-agent-default-xxxxx)
_HELM_NAMES = (("neutron-ovs-agent", "neutron-openvswitch-agent"), ("neutron-lb-agent", "neutron-linuxbridge-agent"))
_CRI_CONTAINER = re.compile(r"^(?P<pod>[^_]+)_(?P<ns>[^_]+)_(?P<container>.+)-[0-9a-f]{64}\.log$")
_GENERIC = {"0", "1", "2", "error", "errors", "messages", "syslog", "current", "output", "log", "logs", "journal",
            "devstack", "all", "combined", "stdout", "stderr", "console", ""}


# Service names as OpenStack ships them; a file named "<service>-<host>.log" maps to the service.
KNOWN_SERVICES = tuple(sorted(
    {s for s in DEVSTACK_UNITS.values()} | {
        "nova-api", "nova-compute", "nova-scheduler", "nova-conductor", "nova-novncproxy", "nova-api-metadata",
        "nova-osapi", "neutron-server", "neutron-openvswitch-agent", "neutron-dhcp-agent", "neutron-l3-agent",
        "neutron-metadata-agent", "neutron-linuxbridge-agent", "neutron-sriov-agent", "cinder-api",
        "cinder-volume", "cinder-scheduler", "cinder-backup", "glance-api", "keystone", "placement-api",
        "heat-api", "heat-engine", "octavia-api", "octavia-worker", "octavia-health-manager",
        "octavia-housekeeping", "horizon",
    },
    key=len, reverse=True,
))


def _known(name: str) -> Optional[str]:
    low = name.lower().replace("_", "-")
    if low in _INFRA:
        return _INFRA[low]
    if low.startswith("rabbit@") or low.startswith("rabbitmq"):
        return "rabbitmq"
    for helm, svc in _HELM_NAMES:
        if low == helm or low.startswith(helm + "-"):
            return svc
    for svc in KNOWN_SERVICES:  # longest first: "nova-compute-compute-1" -> nova-compute
        if low == svc or low.startswith(svc + "-"):
            return svc
    project = low.split("-", 1)[0]
    if project in _PROJECTS:
        return low
    return None


@lru_cache(maxsize=4096)
def from_unit(unit: str) -> Optional[str]:
    """``devstack@n-cpu.service`` -> nova-compute; ``nova-compute.service`` -> nova-compute."""
    name = unit.split("/")[-1]
    if name.endswith(".service"):
        name = name[: -len(".service")]
    if name.startswith("devstack@"):
        name = name[len("devstack@"):]
        return DEVSTACK_UNITS.get(name, name)
    return _known(name)


@lru_cache(maxsize=4096)
def from_path(path: str) -> Optional[str]:
    """Service named by a log file's path, or None when the name is generic (``0.log``, ``error.log``)."""
    p = PurePath(path)
    m = _CRI_CONTAINER.match(p.name)
    if m:
        return _known(m.group("container")) or m.group("container")
    stem = _ROTATION.sub("", p.name)
    if stem.lower() not in _GENERIC:
        hit = _known(stem) or from_unit(stem)
        if hit:
            return hit
        # a project's folder and a short file name: cinder/api.log, neutron/server.log, glance/registry.log
        project = _project_folder(p)
        if project and re.fullmatch(r"[A-Za-z][\w-]*", stem):
            return _known(f"{project}-{stem}") or f"{project}-{stem.lower().replace('_', '-')}"
    for parent in reversed(p.parts[:-1]):  # kubelet's pods/<pod>/<container>/0.log, /var/log/mysql/error.log
        name = parent.rsplit("_", 2)[1] if parent.count("_") >= 2 else parent
        hit = _known(name) or _known(re.sub(r"-\d+$", "", name))
        if hit:
            return hit
    return None


def _project_folder(p: PurePath) -> Optional[str]:
    """The OpenStack project a log file's parent folder names (``/var/log/cinder/``), if any."""
    parent = p.parent.name.lower()
    return parent if parent in _PROJECTS else None


@lru_cache(maxsize=4096)
def from_logger(logger: str) -> Optional[str]:
    for prefix, service in _LOGGERS:
        if logger.startswith(prefix):
            return service
    return None


@lru_cache(maxsize=8192)
def resolve(path_service: Optional[str], origin: Optional[str], logger: Optional[str]) -> Optional[str]:
    """Most specific wins: the line's own origin (loghub prefix, journald unit), then the file, then the logger."""
    if origin:
        hit = from_unit(origin) if "[" not in origin and not origin.endswith(".log") and ".log." not in origin else None
        hit = hit or from_path(origin)
        if hit:
            return hit
    if path_service:
        return path_service
    return from_logger(logger) if logger else None
