"""Normal background traffic: user requests, periodic tasks, broker/database chatter.

Everything here is ERROR-free on purpose (a fault-free run must contain no ERROR lines); the only WARNINGs are the
harmless ones every real deployment shows (unknown image-cache base files, aborted idle DB connections).
"""

from __future__ import annotations

from datetime import datetime

from . import apilog, flows, volumes
from .apilog import bare_ctx, user_ctx
from .events import Ctx, Sink
from .ids import AMQP_PORT, CLIENT_IPS, CONTROLLER, CONTROLLER_IP, after
from .window import Disruption
from .world import World

WEIGHTS = {
    "poll": 38, "boot": 11, "delete": 10, "token": 6, "image_list": 6, "network_list": 6, "volume": 4,
    "attach": 3, "volume_list": 4, "churn": 4, "db_noise": 1,
}
"""Relative frequency of each background request kind."""
FILLERS = ("poll", "image_list", "network_list")
"""One-line kinds used to top the log set up to the requested size."""
RABBIT_CLIENTS = ("nova-api", "nova-conductor", "nova-scheduler", "neutron-server", "cinder-api", "cinder-volume",
                  "neutron-dhcp-agent")


def run(kind: str, s: Sink, w: World, t: datetime, dis: Disruption, arg: str | None = None) -> None:
    """Run one background flow of ``kind`` starting at ``t``, standing aside where the fault has taken over."""
    if dis.blocks(kind, t):
        if kind not in FILLERS:
            return
        kind = "image_list"  # a one-line request the fault never blocks, so top-up still lands exactly
    if kind == "boot":
        boot(s, w, t, dis, arg)
    elif kind == "delete":
        delete(s, w, t, dis)
    elif kind == "attach":
        attach(s, w, t, dis)
    elif kind == "volume":
        volumes.create_volume(s, w, t, w.rng.choice(w.projects))
    else:
        SIMPLE[kind](s, w, t)


def boot(s: Sink, w: World, t: datetime, dis: Disruption, host: str | None) -> None:
    avoid = dis.avoid(t)
    if host in avoid:
        host = None
    b = flows.request_boot(s, w, t, w.rng.choice(w.projects))
    host = host or flows.pick_host(w, b.inst, avoid)
    if host is None:  # cloud full: the user retries later; keep the log clean rather than fake a failure
        del w.instances[b.inst.uuid]
        return
    flows.schedule(s, w, b, host)
    flows.prepare(s, w, b)
    flows.wire_port(s, w, b)
    flows.finish(s, w, b)


def delete(s: Sink, w: World, t: datetime, dis: Disruption) -> None:
    gone = [i for i in w.instances.values()
            if i.state in ("active", "error") and not dis.blocks("delete", t, i.host)]
    if not gone:
        poll(s, w, t)
        return
    flows.delete(s, w, t, w.rng.choice(gone[: max(3, len(gone) // 2)]))


def attach(s: Sink, w: World, t: datetime, dis: Disruption) -> None:
    rng = w.rng
    guests = [i for i in w.instances.values()
              if i.state == "active" and len(i.volumes) < 3 and not dis.blocks("attach", t, i.host)]
    if not guests:
        return
    inst = rng.choice(guests)
    free = [v for v in w.volumes.values() if v.project == inst.project and v.instance is None]
    if free:
        volumes.attach(s, w, t, inst, rng.choice(free))
    else:
        vol = volumes.create_volume(s, w, t, inst.project)
        volumes.attach(s, w, after(t, rng.uniform(15, 60)), inst, vol)


def poll(s: Sink, w: World, t: datetime) -> None:
    """Dashboards and scripts polling ``servers/detail`` (the commonest nova-api line)."""
    rng = w.rng
    p = rng.choice(w.projects)
    n = sum(1 for i in w.instances.values() if i.project == p)
    took = rng.uniform(0.06, 0.15) + 0.012 * n
    apilog.nova_api(s, w, t, user_ctx(w, p), rng.choice(CLIENT_IPS), "GET", f"/v2.1/{p.id}/servers/detail", 200,
                    15 + 1780 * n + rng.randint(0, 120) if n else 15, took)


def token(s: Sink, w: World, t: datetime) -> None:
    apilog.keystone_request(s, w, t, Ctx(w.ids.req()), "POST", "/v3/auth/tokens")


def image_list(s: Sink, w: World, t: datetime) -> None:
    rng = w.rng
    p = rng.choice(w.projects)
    apilog.glance_api(s, w, t, user_ctx(w, p), rng.choice(CLIENT_IPS), "GET", "/v2/images?limit=20", 200,
                      1130 * len(w.images) + rng.randint(200, 400))


def network_list(s: Sink, w: World, t: datetime) -> None:
    rng = w.rng
    p = rng.choice(w.projects)
    path = rng.choice(("/v2.0/networks", "/v2.0/ports?device_owner=network%3Adhcp", "/v2.0/security-groups",
                       "/v2.0/floatingips"))
    apilog.neutron_api(s, w, t, user_ctx(w, p), rng.choice(CLIENT_IPS), "GET", path, 200, rng.randint(600, 9000))


def volume_list(s: Sink, w: World, t: datetime) -> None:
    p = w.rng.choice(w.projects)
    apilog.cinder_api(s, w, t, user_ctx(w, p), "GET", f"/v3/{p.id}/volumes/detail", 200)


def churn(s: Sink, w: World, t: datetime) -> None:
    """A worker recycling its AMQP connection: accept, authenticate, and (later) close."""
    rng, ids = w.rng, w.ids
    svc = rng.choice(RABBIT_CLIENTS + tuple(h.name for h in w.hosts))
    host = svc if svc in w.host else CONTROLLER
    binary = "nova-compute" if svc in w.host else svc
    peer = f"{w.service_ip(host)}:{ids.port()} -> {CONTROLLER_IP}:{AMQP_PORT}"
    name = f"{binary}:{w.pid(binary, host)}:{ids.uuid()}"
    erl = ids.erl_pid()
    s.rabbit(t, "info", erl, f"accepting AMQP connection {erl} ({peer})")
    s.rabbit(after(t, rng.uniform(0.002, 0.02)), "info", erl,
             f"connection {erl} ({peer} - {name}): user 'openstack' authenticated and granted access to vhost '/'")
    s.rabbit(after(t, rng.uniform(5, 90)), "info", erl,
             f"closing AMQP connection {erl} ({peer} - {name}, vhost: '/', user: 'openstack')")


def db_noise(s: Sink, w: World, t: datetime) -> None:
    """An idle pooled connection dropped by a restarted worker: MariaDB notes it as a warning."""
    w.mysql_thread += w.rng.randint(3, 40)
    db = w.rng.choice(("nova", "nova_api", "nova_cell0", "neutron", "keystone", "cinder", "glance", "placement"))
    user = {"nova_api": "nova", "nova_cell0": "nova"}.get(db, db)
    s.mysql(t, w.mysql_thread, "Warning", f"Aborted connection {w.mysql_thread} to db: '{db}' user: '{user}' "
            f"host: '{CONTROLLER_IP}' (Got an error reading communication packets)")


SIMPLE = {"poll": poll, "token": token, "image_list": image_list, "network_list": network_list,
          "volume_list": volume_list, "churn": churn, "db_noise": db_noise}


# --- periodic tasks on the compute hosts ------------------------------------------------------------------------


def audit(s: Sink, w: World, t: datetime, host: str) -> None:
    """``update_available_resource``: what the resource tracker reports every interval."""
    ctx = bare_ctx(w)
    h = w.host[host]
    ram, disk, vcpus = w.usage(host)
    nc = flows.NC
    rt = "nova.compute.resource_tracker"
    s.emit(t, nc, host, "DEBUG", "oslo_service.periodic_task", ctx,
           "Running periodic task ComputeManager.update_available_resource")
    s.emit(after(t, 0.01), nc, host, "INFO", rt, ctx, f"Auditing locally available compute resources for node {host}")
    t = after(t, w.rng.uniform(0.3, 0.9))
    s.emit(t, nc, host, "INFO", rt, ctx, f"Total usable vcpus: {h.vcpus}, total allocated vcpus: {vcpus}")
    s.emit(after(t, 0.001), nc, host, "INFO", rt, ctx,
           f"Final resource view: name={host} phys_ram={h.phys_ram}MB used_ram={ram}MB phys_disk={h.disk}GB "
           f"used_disk={disk}GB total_vcpus={h.vcpus} used_vcpus={vcpus} pci_stats=[]")
    s.emit(after(t, w.rng.uniform(0.02, 0.08)), nc, host, "INFO", rt, ctx,
           f"Compute_service record updated for {host}:{host}")


def sync_power(s: Sink, w: World, t: datetime, host: str) -> None:
    ctx = bare_ctx(w)
    s.emit(t, flows.NC, host, "DEBUG", "oslo_service.periodic_task", ctx,
           "Running periodic task ComputeManager._sync_power_states")
    for i, inst in enumerate(w.on_host(host)):
        s.emit(after(t, 0.02 + 0.003 * i), flows.NC, host, "DEBUG", flows.MGR, ctx,
               f"Triggering sync for uuid {inst.uuid}")


def image_cache(s: Sink, w: World, t: datetime, host: str) -> None:
    """The image cache manager: active base files, plus stale ones it does not recognise (a normal WARNING)."""
    ctx = bare_ctx(w)
    log = "nova.virt.libvirt.imagecache"
    h = w.host[host]
    in_use = sorted({i.image.id for i in w.on_host(host)})
    for n, img in enumerate(i for i in w.images if i.id in in_use):
        s.emit(after(t, 0.01 * n), flows.NC, host, "INFO", log, ctx, f"image {img.id} at ({img.base}): checking")
    t = after(t, 0.1)
    active = " ".join(i.base for i in w.images if i.id in in_use)
    if active:
        s.emit(t, flows.NC, host, "INFO", log, ctx, f"Active base files: {active}")
    stale = [i for i in w.images if i.id in h.cached_images and i.id not in in_use]
    for img in stale:
        s.emit(after(t, 0.01), flows.NC, host, "WARNING", log, ctx, f"Unknown base file: {img.base}")
    if stale:
        s.emit(after(t, 0.02), flows.NC, host, "INFO", log, ctx,
               "Removable base files: " + " ".join(i.base for i in stale))
        s.emit(after(t, 0.03), flows.NC, host, "INFO", log, ctx,
               "Base or swap file too young to remove: " + stale[0].base)
