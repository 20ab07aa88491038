"""Faults on one compute host or one backing service: VIF wiring, instance disk, QEMU/libvirt, iSCSI, image store.

Builds that land on the broken host fail the way nova really fails them (spawn traceback, cleanup, then either a
reschedule to a healthy host or an aborted build in ERROR); guests already running there show the side effects.
"""

from __future__ import annotations

from datetime import datetime

from . import apilog, flows, tracebacks, volumes
from .apilog import bare_ctx, user_ctx
from .events import NO_CTX, ROOT, SYMPTOM, Ctx
from .flows import DRV, MGR, NC, OVS, OVS_LOG, Build
from .ids import CONTROLLER, CONTROLLER_IP, after
from .window import FaultCtx
from .world import Image, Instance

VLOG = "ovsdbapp.backend.ovs_idl.vlog"
MONITOR = "ovsdb-client monitor tcp:127.0.0.1:6640 Interface name,ofport,external_ids --format=json"


def _role(first: bool) -> str:
    return ROOT if first else SYMPTOM


def _spread(fx: FaultCtx, n: int, lead: float, tail: float) -> list[datetime]:
    """``n`` request times from ``t0 + lead`` to ``tail`` seconds before the span ends."""
    room = max(1.0, (fx.end - fx.t0).total_seconds() - lead - tail)
    step = room / max(1, n)
    return [after(fx.t0, lead + i * step + fx.rng.uniform(0, step * 0.6)) for i in range(n)]


def _failing_build(fx: FaultCtx, t: datetime, *, image: Image | None = None) -> Build:
    """A boot the scheduler sends to the faulty host (it does not know the host is broken)."""
    p = fx.rng.choice(fx.w.projects)
    b = flows.request_boot(fx.s, fx.w, t, p, fx.w.new_instance(p, image=image))
    flows.schedule(fx.s, fx.w, b, fx.host)
    fx.affect(instance=b.inst.uuid, request=b.ctx.req)
    return b


def _reschedule(fx: FaultCtx, b: Build, reason: str) -> None:
    """Clean up on the faulty host, then conductor sends the build to an alternate host, where it succeeds."""
    s, w, rng, inst = fx.s, fx.w, fx.rng, b.inst
    t = flows.teardown(s, w, after(b.t, rng.uniform(0.2, 0.6)), inst, b.ctx, lifecycle_event=False)
    s.emit(t, NC, fx.host, "DEBUG", MGR, b.ctx, f"Build of instance {inst.uuid} was re-scheduled: {reason}",
           instance=inst.uuid)
    t = flows.release_network(s, w, after(t, 0.05), inst, b.ctx, agent=False)
    alt = flows.pick_host(w, inst, {fx.host})
    if alt is None:
        inst.state = "error"
        return
    apilog.placement_api(s, w, after(t, 0.4), apilog.service_ctx(w, "nova", global_req=b.ctx.req), CONTROLLER_IP,
                         "PUT", f"/placement/allocations/{inst.uuid}", 204, 0)
    inst.host = alt
    b.t = after(t, rng.uniform(0.8, 1.6))
    flows.prepare(s, w, b)
    flows.wire_port(s, w, b)
    flows.finish(s, w, b)


def _count(fx: FaultCtx, per: int, most: int) -> int:
    return max(1, min(most, (fx.budget - 30) // per))


def neutron_vif_failure(fx: FaultCtx) -> str:
    """The OVS agent loses its OVSDB monitor: new taps are never wired, nova times out on network-vif-plugged."""
    s, w, rng, t0, host = fx.s, fx.w, fx.rng, fx.t0, fx.host
    actx = Ctx(w.agent_req(OVS, host))
    s.emit(t0, OVS, host, "INFO", VLOG, NO_CTX,
           "tcp:127.0.0.1:6640: no response to inactivity probe after 5 seconds, disconnecting", role=ROOT)
    s.emit(after(t0, 0.004), OVS, host, "ERROR", "neutron.agent.linux.async_process", NO_CTX,
           f"Error received from [{MONITOR}]: None", role=ROOT)
    s.emit(after(t0, 0.005), OVS, host, "ERROR", "neutron.agent.linux.async_process", NO_CTX,
           f"Process [{MONITOR}] dies due to the error: None", role=ROOT)
    s.emit(after(t0, 1.0), OVS, host, "INFO", VLOG, NO_CTX, "tcp:127.0.0.1:6640: connecting...")
    tb = tracebacks.ovsdb_timeout(fx.ids.pyobj())
    s.emit(after(t0, 10.01), OVS, host, "ERROR", OVS_LOG, actx, f"Error while processing VIF ports: {tb[-1]}",
           trace=tb, role=SYMPTOM)
    s.emit(after(t0, 11.3), OVS, host, "INFO", VLOG, NO_CTX, "tcp:127.0.0.1:6640: connected")
    n = _count(fx, 80, 6)
    for t in _spread(fx, n, rng.uniform(20, 60), 330):
        b = _failing_build(fx, t)
        inst = b.inst
        flows.prepare(s, w, b)
        tt = after(b.t, 300 + rng.uniform(0.01, 0.3))
        ev = f"network-vif-plugged-{inst.port}"
        s.emit(tt, NC, host, "WARNING", MGR, b.ctx,
               f"Timeout waiting for ['{ev}'] for instance with vm_state building and task_state spawning. "
               f"Event states are: {ev}: timed out after 300.00 seconds", instance=inst.uuid, role=SYMPTOM)
        tb = tracebacks.spawn_vif_timeout()
        s.emit(after(tt, 0.01), NC, host, "ERROR", MGR, b.ctx, f"Instance failed to spawn: {tb[-1]}",
               instance=inst.uuid, trace=tb, role=SYMPTOM)
        t = flows.teardown(s, w, after(tt, rng.uniform(0.3, 0.8)), inst, b.ctx, pending="spawning")
        msg = f"Build of instance {inst.uuid} aborted: Failed to allocate the network(s), not rescheduling."
        s.emit(after(t, 0.2), NC, host, "ERROR", MGR, b.ctx, f"{msg}: nova.exception.BuildAbortException: {msg}",
               instance=inst.uuid, role=SYMPTOM)
        flows.release_network(s, w, after(t, 0.3), inst, b.ctx, agent=False)
        inst.state = "error"
        flows.poll_server(s, w, after(t, rng.uniform(2, 8)), inst)
    return (f"The neutron-openvswitch-agent on {host} lost its OVSDB monitor and stopped wiring new ports, so "
            f"instances built there time out waiting for network-vif-plugged and go to ERROR.")


def compute_disk_full(fx: FaultCtx) -> str:
    """/var/lib/nova/instances on one host is full: image downloads fail, running qcow2 guests pause."""
    s, w, rng, t0, host = fx.s, fx.w, fx.rng, fx.t0, fx.host
    hst = w.host[host]
    n = _count(fx, 80, 5)
    times = [after(t0, -2.0)] + _spread(fx, n - 1, rng.uniform(60, 200), 60)
    for k, t in enumerate(times):
        uncached = [i for i in w.images if i.id not in hst.cached_images]
        if not uncached:
            img = Image(fx.ids.uuid(), f"ubuntu-24.04-minimal-cloudimg-amd64-{k}", 262144000 + k)
            w.images.append(img)
            uncached = [img]
        b = _failing_build(fx, t, image=rng.choice(uncached))
        inst = b.inst
        flows.prepare(s, w, b, image_ok=False)
        got = rng.randint(2, 9) * 33554432
        te = after(b.t, got / 1.2e8)
        apilog.glance_api(s, w, after(te, -0.002), user_ctx(w, inst.project, global_req=b.ctx.req), hst.ip,
                          "GET", f"/v2/images/{inst.image.id}/file", 200, inst.image.size, (te - b.t).total_seconds())
        s.emit(te, NC, host, "ERROR", "nova.image.glance", b.ctx,
               f"Error writing to {inst.image.base}.part: [Errno 28] No space left on device", role=_role(k == 0))
        tb = tracebacks.spawn_enospc(inst.image.base)
        s.emit(after(te, 0.004), NC, host, "ERROR", MGR, b.ctx, f"Instance failed to spawn: {tb[-1]}",
               instance=inst.uuid, trace=tb, role=_role(k == 0))
        b.t = after(te, 0.01)
        _reschedule(fx, b, "[Errno 28] No space left on device")
    for inst in w.on_host(host)[: rng.randint(1, 2)]:
        t = after(t0, rng.uniform(5, 120))
        flows.lifecycle(s, w, t, inst, "Paused", role=SYMPTOM)
        s.emit(after(t, 0.05), NC, host, "WARNING", MGR, bare_ctx(w),
               "During _sync_instance_power_state the DB power_state (1) does not match the vm_power_state from the "
               "hypervisor (3). Updating power_state in the DB to match the hypervisor.", instance=inst.uuid,
               role=SYMPTOM)
        s.emit(after(t, 0.09), NC, host, "WARNING", MGR, bare_ctx(w), "Instance is paused unexpectedly. Ignore.",
               instance=inst.uuid, role=SYMPTOM)
        inst.state = "paused"
        fx.affect(instance=inst.uuid)
    return (f"The instance store /var/lib/nova/instances on {host} is full: image downloads fail with [Errno 28] "
            "No space left on device, builds there are rescheduled and running guests pause on write errors.")


def libvirt_domain_failure(fx: FaultCtx) -> str:
    """QEMU on one host cannot get guest RAM: running guests die (monitor EOF), new domains fail to start."""
    s, w, rng, t0, host = fx.s, fx.w, fx.rng, fx.t0, fx.host
    tids = w.libvirt_tids[host]
    running = w.on_host(host)
    crashes = [t0] + [after(t0, rng.uniform(90, 400)) for _ in range(min(len(running), rng.randint(1, 2)) - 1)]
    for k, (t, inst) in enumerate(zip(crashes, running)):
        _guest_died(fx, t, inst, tids, first=k == 0)
    n = _count(fx, 85, 5)
    for k, t in enumerate(_spread(fx, n, rng.uniform(8, 40), 60)):
        b = _failing_build(fx, t)
        inst = b.inst
        flows.prepare(s, w, b, start_guest=False)
        stamp = f"{after(b.t, -0.003):%Y-%m-%dT%H:%M:%S.%f}Z"
        msg = (f"internal error: qemu unexpectedly closed the monitor: {stamp} qemu-system-x86_64: cannot set up "
               "guest memory 'pc.ram': Cannot allocate memory")
        s.libvirt(b.t, host, rng.choice(tids), "error", "qemuProcessReportLogError:2051", msg,
                  role=ROOT if k == 0 and not running else SYMPTOM)
        tb = tracebacks.spawn_libvirt_error(msg)
        s.emit(after(b.t, 0.05), NC, host, "ERROR", MGR, b.ctx, f"Instance failed to spawn: {tb[-1]}",
               instance=inst.uuid, trace=tb, role=_role(k == 0))
        b.t = after(b.t, 0.06)
        _reschedule(fx, b, msg)
    return (f"QEMU guests on {host} are being killed and new domains fail to start because the host is out of "
            "memory; libvirt reports 'qemu unexpectedly closed the monitor' and builds are rescheduled elsewhere.")


def _guest_died(fx: FaultCtx, t: datetime, inst: Instance, tids: list[int], *, first: bool) -> None:
    s, w, rng, host = fx.s, fx.w, fx.rng, fx.host
    s.libvirt(t, host, rng.choice(tids), "error", "qemuMonitorIO:620", "internal error: End of file from qemu monitor",
              role=_role(first))
    s.libvirt(after(t, 0.002), host, rng.choice(tids), "warning", "qemuProcessMonitorReportLogError:1820",
              f"{inst.domain}: qemu-system-x86_64: terminating on signal 9", role=SYMPTOM)
    t = after(t, rng.uniform(0.05, 0.3))
    flows.lifecycle(s, w, t, inst, "Stopped", role=SYMPTOM)
    ctx = bare_ctx(w)
    s.emit(after(t, 0.1), NC, host, "WARNING", MGR, ctx,
           "During _sync_instance_power_state the DB power_state (1) does not match the vm_power_state from the "
           "hypervisor (4). Updating power_state in the DB to match the hypervisor.", instance=inst.uuid, role=SYMPTOM)
    s.emit(after(t, 0.15), NC, host, "WARNING", MGR, ctx,
           "Instance shutdown by itself. Calling the stop API. Current vm_state: active, current task_state: None, "
           "original DB power_state: 1, current VM power_state: 4", instance=inst.uuid, role=SYMPTOM)
    t = after(t, rng.uniform(0.4, 1.0))
    s.emit(t, NC, host, "INFO", MGR, ctx, "Instance is already powered off in the hypervisor when stop is called.",
           instance=inst.uuid)
    s.emit(after(t, 0.01), NC, host, "INFO", DRV, ctx, "Instance already shutdown.", instance=inst.uuid)
    s.emit(after(t, 0.02), NC, host, "INFO", DRV, ctx, "Instance destroyed successfully.", instance=inst.uuid)
    inst.state = "stopped"
    fx.affect(instance=inst.uuid)


def cinder_volume_attach_failure(fx: FaultCtx) -> str:
    """The iSCSI target daemon on the cinder-volume host is down: exports fail, every attach returns 500."""
    s, w, rng, t0 = fx.s, fx.w, fx.rng, fx.t0
    guests = [i for i in w.instances.values() if i.state == "active" and len(i.volumes) < 2]
    n = _count(fx, 70, 6) if guests else 0
    for k, t in enumerate([after(t0, -1.6)] + _spread(fx, n - 1, rng.uniform(40, 120), 30)):
        inst = rng.choice(guests)
        free = [v for v in w.volumes.values() if v.project == inst.project and v.instance is None]
        vol = rng.choice(free) if free else volumes.create_volume(s, w, after(t, -rng.uniform(20, 60)), inst.project)
        ctx, att, t = volumes.attach_begin(s, w, t, inst, vol)
        cctx = user_ctx(w, inst.project, global_req=ctx.req)
        tv = after(t, rng.uniform(0.2, 0.5))
        s.emit(tv, volumes.CV, CONTROLLER, "ERROR", "cinder.volume.targets.tgt", cctx,
               f"Failed to create iscsi target for Volume ID: {vol.id}: Unexpected error while running command.",
               role=_role(k == 0))
        export = f"Create export for volume failed (Failed to create iscsi target for volume volume-{vol.id}.)."
        tb = tracebacks.cinder_target(vol.id)
        s.emit(after(tv, 0.01), volumes.CV, CONTROLLER, "ERROR", "cinder.volume.manager", cctx,
               f"{export}: {tb[-1]}", trace=tb, role=_role(k == 0))
        backend = f"Bad or unexpected response from the storage volume backend API: {export}"
        explanation = f"Unable to update attachment.({backend})."
        s.emit(after(tv, 0.03), "cinder-api", CONTROLLER, "ERROR", "cinder.api.v3.attachments", cctx,
               f"{explanation}: cinder.exception.VolumeBackendAPIException: {backend}", role=SYMPTOM)
        apilog.cinder_api(s, w, after(t, 0.1), cctx, "PUT", f"/v3/{inst.project.id}/attachments/{att}", 500,
                          (tv - t).total_seconds(), role=SYMPTOM)
        tb = tracebacks.attach_failed(explanation, cctx.req)
        assert inst.host is not None
        s.emit(after(tv, 0.08), NC, inst.host, "ERROR", MGR, ctx,
               f"Failed to attach {vol.id} at /dev/vd{'bcdefgh'[len(inst.volumes)]}: {tb[-1]}", instance=inst.uuid,
               trace=tb, role=SYMPTOM)
        apilog.cinder_api(s, w, after(tv, 0.3), user_ctx(w, inst.project, global_req=ctx.req), "DELETE",
                          f"/v3/{inst.project.id}/attachments/{att}", 200)
        fx.affect(instance=inst.uuid, request=ctx.req)
    return ("The iSCSI target daemon (tgtd) on the cinder-volume host is down, so cinder cannot export volumes and "
            "every volume attach fails with HTTP 500.")


def glance_image_unavailable(fx: FaultCtx) -> str:
    """The image store lost the data of one image: every boot from it aborts with ImageNotFound."""
    s, w, rng, t0 = fx.s, fx.w, fx.rng, fx.t0
    img = max(w.images[:4], key=lambda i: i.size)
    path = f"/var/lib/glance/images/{img.id}"
    w.broken_image = img.id
    n = _count(fx, 70, 6)
    for k, t in enumerate([after(t0, -2.5)] + _spread(fx, n - 1, rng.uniform(30, 120), 40)):
        host = rng.choice([h for h in w.hosts if img.id not in h.cached_images] or w.hosts)
        host.cached_images.discard(img.id)
        p = rng.choice(w.projects)
        b = flows.request_boot(s, w, t, p, w.new_instance(p, image=img))
        flows.schedule(s, w, b, host.name)
        fx.affect(instance=b.inst.uuid, request=b.ctx.req)
        flows.prepare(s, w, b, image_ok=False)
        gctx = user_ctx(w, p, global_req=b.ctx.req)
        tg = b.t
        s.emit(tg, "glance-api", CONTROLLER, "WARNING", "glance.location", gctx,
               f"Get image {img.id} data failed: Image {path} not found.", role=_role(k == 0))
        s.emit(after(tg, 0.001), "glance-api", CONTROLLER, "ERROR", "glance.location", gctx,
               f"Glance tried all active locations to get data for image {img.id} but all have failed.",
               role=_role(k == 0))
        apilog.glance_api(s, w, after(tg, 0.002), gctx, host.ip, "GET", f"/v2/images/{img.id}/file", 404, 326)
        tb = tracebacks.image_download(img.id)
        inst = b.inst
        s.emit(after(tg, 0.02), NC, host.name, "ERROR", MGR, b.ctx, f"Instance failed to spawn: {tb[-1]}",
               instance=inst.uuid, trace=tb, role=SYMPTOM)
        t = flows.teardown(s, w, after(tg, 0.3), inst, b.ctx, lifecycle_event=False)
        msg = f"Build of instance {inst.uuid} aborted: Image {img.id} could not be found."
        s.emit(after(t, 0.1), NC, host.name, "ERROR", MGR, b.ctx, f"{msg}: nova.exception.BuildAbortException: {msg}",
               instance=inst.uuid, role=SYMPTOM)
        flows.release_network(s, w, after(t, 0.2), inst, b.ctx, agent=False)
        inst.state = "error"
        flows.poll_server(s, w, after(t, rng.uniform(2, 8)), inst)
    return (f"The data file of image {img.name} ({img.id}) is missing from the Glance filesystem store, so every "
            "boot from that image aborts with ImageNotFound.")
