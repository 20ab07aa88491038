"""The fault catalogue: what each injectable fault is, where it lives, and how it disrupts normal traffic.

``component`` is the thing at fault (what an RCA engine should blame); ``service`` is the service through which
it surfaces (where an operator would look first). ``blocks`` names the background flow kinds the fault takes over
while active, and ``host_scoped`` faults take over the boots, deletes and attaches of one compute host only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from . import control_faults, host_faults
from .window import FaultCtx

PERIODIC = frozenset({"audit", "sync", "imagecache"})


@dataclass(frozen=True)
class Fault:
    name: str
    component: str | None
    service: str | None
    category: str | None
    description: str
    inject: Callable[[FaultCtx], str] | None = None
    blocks: frozenset[str] = frozenset()
    host_scoped: bool = False
    start_range: tuple[float, float] = (0.4, 0.7)
    """Where in the span the fault starts (fractions); faults with slow symptoms start earlier."""


FAULTS: dict[str, Fault] = {f.name: f for f in (
    Fault("none", None, None, None, "No fault: normal background traffic only."),
    Fault("rabbitmq_outage", "rabbitmq", "rabbitmq", "messaging",
          "RabbitMQ hits its memory watermark and is killed; all services lose AMQP and RPC calls time out.",
          control_faults.rabbitmq_outage,
          frozenset({"boot", "delete", "attach", "volume", "churn"}) | PERIODIC),
    Fault("db_pool_exhausted", "nova-conductor", "nova-conductor", "database",
          "nova-conductor's SQLAlchemy connection pool is exhausted (QueuePool limit reached).",
          control_faults.db_pool_exhausted, frozenset({"boot", "delete", "attach", "audit"})),
    Fault("neutron_vif_failure", "neutron", "neutron-openvswitch-agent", "network",
          "The OVS agent on one compute host stops wiring ports; builds there time out on network-vif-plugged.",
          host_faults.neutron_vif_failure, host_scoped=True, start_range=(0.35, 0.5)),
    Fault("compute_disk_full", "nova-compute", "nova-compute", "resource_exhaustion",
          "The instance store of one compute host is full (No space left on device).",
          host_faults.compute_disk_full, host_scoped=True),
    Fault("keystone_auth_failure", "keystone", "keystone", "identity",
          "nova's service credentials are rejected by keystone; nova-api answers 503.",
          control_faults.keystone_auth_failure, frozenset({"poll", "boot", "delete", "attach"})),
    Fault("libvirt_domain_failure", "libvirt", "nova-compute", "compute",
          "QEMU/libvirt on one compute host cannot run guests (qemu unexpectedly closed the monitor).",
          host_faults.libvirt_domain_failure, host_scoped=True),
    Fault("no_valid_host", "placement", "nova-scheduler", "scheduling",
          "The cloud runs out of capacity: placement returns no allocation candidates, boots fail with NoValidHost.",
          control_faults.no_valid_host, frozenset({"boot"}), start_range=(0.4, 0.6)),
    Fault("cinder_volume_attach_failure", "cinder", "cinder-volume", "storage",
          "The iSCSI target daemon behind cinder-volume is down; volume attaches fail with HTTP 500.",
          host_faults.cinder_volume_attach_failure, frozenset({"attach"})),
    Fault("glance_image_unavailable", "glance", "glance-api", "image",
          "One image's data is missing from the Glance store; boots from it abort with ImageNotFound.",
          host_faults.glance_image_unavailable),
)}
