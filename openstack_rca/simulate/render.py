"""Layouts: where each service's records go and what each line looks like.

* ``oslo``: one file per service (per host for nova-compute, the OVS agent and libvirtd), oslo.log default format;
* ``journald``: DevStack, every OpenStack unit in ``journal/devstack.log`` as ``journalctl`` prints it;
* ``cri``: kolla/openstack-helm pods, each oslo line wrapped in the CRI log format.

RabbitMQ, MariaDB and libvirtd always keep their native line formats (wrapped in CRI in the ``cri`` layout).
Traceback lines use oslo's ``logging_exception_prefix``: no context bracket, just ``ERROR <logger> [instance]``.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime

from .events import Event
from .world import World

LAYOUTS = ("oslo", "journald", "cri")


@dataclass(frozen=True)
class Svc:
    folder: str
    unit: str  # DevStack systemd unit: devstack@<unit>.service
    container: str  # container name under kolla/openstack-helm
    per_host: bool = False
    native: bool = False


SERVICES = {
    "nova-api": Svc("nova", "n-api", "nova-api"),
    "nova-scheduler": Svc("nova", "n-sch", "nova-scheduler"),
    "nova-conductor": Svc("nova", "n-cond", "nova-conductor"),
    "nova-compute": Svc("nova", "n-cpu", "nova-compute", per_host=True),
    "placement-api": Svc("placement", "placement-api", "placement-api"),
    "neutron-server": Svc("neutron", "q-svc", "neutron-server"),
    "neutron-openvswitch-agent": Svc("neutron", "q-agt", "neutron-openvswitch-agent", per_host=True),
    "neutron-dhcp-agent": Svc("neutron", "q-dhcp", "neutron-dhcp-agent"),
    "cinder-api": Svc("cinder", "c-api", "cinder-api"),
    "cinder-volume": Svc("cinder", "c-vol", "cinder-volume"),
    "glance-api": Svc("glance", "g-api", "glance-api"),
    "keystone": Svc("keystone", "keystone", "keystone"),
    "rabbitmq": Svc("rabbitmq", "", "rabbitmq", native=True),
    "mysql": Svc("mysql", "", "mariadb", native=True),
    "libvirtd": Svc("libvirt", "", "libvirt", per_host=True, native=True),
}
JOURNAL = "journal/devstack.log"


def native_path(service: str, host: str) -> str:
    return {"rabbitmq": "rabbitmq/rabbit@controller.log", "mysql": "mysql/error.log"}.get(
        service, f"libvirt/libvirtd-{host}.log")


def oslo_path(service: str, host: str) -> str:
    svc = SERVICES[service]
    if svc.native:
        return native_path(service, host)
    return f"{svc.folder}/{service}-{host}.log" if svc.per_host else f"{svc.folder}/{service}.log"


def cri_path(service: str, host: str, seed: int) -> str:
    """``pods/<namespace>_<pod>_<uid>/<container>/0.log``; per-host pods are numbered compute-1 -> 0."""
    svc = SERVICES[service]
    index = int(host.rsplit("-", 1)[1]) - 1 if svc.per_host else 0
    pod = f"{svc.container}-{index}"
    uid = uuid.UUID(int=random.Random(f"{seed}/pod/{pod}").getrandbits(128), version=4)
    return f"pods/openstack_{pod}_{uid}/{svc.container}/0.log"


def _oslo_ts(t: datetime) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}"


def native_line(ev: Event) -> str:
    t = ev.t
    if ev.service == "rabbitmq":
        return f"{t:%Y-%m-%d %H:%M:%S.%f}+00:00 {ev.text}"
    if ev.service == "mysql":
        return f"{t:%Y-%m-%d %H:%M:%S} {ev.text}"
    return f"{t:%Y-%m-%d %H:%M:%S}.{t.microsecond // 1000:03d}+0000: {ev.text}"


def oslo_lines(ev: Event, pid: int) -> list[str]:
    head = f"{_oslo_ts(ev.t)} {pid}"
    inst = f"[instance: {ev.instance}] " if ev.instance else ""
    lines = [f"{head} {ev.level} {ev.logger} {ev.ctx.oslo()} {inst}{ev.text}"]
    lines += [f"{head} ERROR {ev.logger} {inst}{tb}" for tb in ev.trace]
    return lines


def journal_lines(ev: Event, pid: int) -> list[str]:
    t = ev.t
    head = f"{t:%b} {t.day:2d} {t:%H:%M:%S} {ev.host} devstack@{SERVICES[ev.service].unit}.service[{pid}]:"
    inst = f"[instance: {ev.instance}] " if ev.instance else ""
    lines = [f"{head} {ev.level} {ev.logger} {ev.ctx.devstack()} {inst}{ev.text}"]
    lines += [f"{head} ERROR {ev.logger} {inst}{tb}" for tb in ev.trace]
    return lines


def cri_wrap(ev: Event, lines: list[str], nanos: int) -> list[str]:
    """containerd's format: RFC 3339 nanosecond time, stream, ``F`` (full line). Errors go to stderr."""
    stream = "stderr" if ev.level in ("ERROR", "CRITICAL") else "stdout"
    stamp = f"{ev.t:%Y-%m-%dT%H:%M:%S.%f}{nanos:03d}Z"
    return [f"{stamp} {stream} F {line}" for line in lines]


def render(events: list[Event], layout: str, w: World) -> tuple[dict[str, list[str]], dict[int, tuple[str, int]]]:
    """Return ``{path: lines}`` and, for every event, ``seq -> (path, 1-based line of its first line)``."""
    groups: dict[str, list[Event]] = {}
    for ev in events:
        groups.setdefault(_path(ev, layout, w.seed), []).append(ev)
    files: dict[str, list[str]] = {}
    where: dict[int, tuple[str, int]] = {}
    for path in sorted(groups):
        out: list[str] = []
        prev, nanos = None, 0
        for ev in sorted(groups[path], key=lambda e: (e.t, e.seq)):
            # sub-microsecond digits for the CRI stamp: arbitrary, but increasing within one microsecond
            nanos = min(999, nanos + 1) if ev.t == prev else (ev.seq * 37) % 900
            prev = ev.t
            where[ev.seq] = (path, len(out) + 1)
            out += _lines(ev, layout, w, nanos)
        files[path] = out
    return files, where


def _path(ev: Event, layout: str, seed: int) -> str:
    if layout == "cri":
        return cri_path(ev.service, ev.host, seed)
    if layout == "journald" and not SERVICES[ev.service].native:
        return JOURNAL
    return oslo_path(ev.service, ev.host)


def _lines(ev: Event, layout: str, w: World, nanos: int) -> list[str]:
    if ev.native:
        lines = [native_line(ev)]
    elif layout == "journald":
        return journal_lines(ev, w.pid(ev.service, ev.host))
    else:
        lines = oslo_lines(ev, w.pid(ev.service, ev.host))
    return cri_wrap(ev, lines, nanos) if layout == "cri" else lines
