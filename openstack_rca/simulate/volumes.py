"""Cinder flows: create a volume (cinder-api -> cinder-volume) and attach it to a guest (nova <-> cinder).

Attach is split like a boot: ``attach_begin`` is the part that always works (API, BDM reservation, attachment
record), ``attach_finish`` the export + connection that a storage fault breaks.
"""

from __future__ import annotations

from datetime import datetime

from . import apilog
from .apilog import user_ctx
from .events import Ctx, Sink
from .flows import MGR, NC
from .ids import CLIENT_IPS, CONTROLLER, after
from .world import Instance, Project, Volume, World

CV = "cinder-volume"
CREATE_FLOW = "cinder.volume.flows.manager.create_volume"


def create_volume(s: Sink, w: World, t: datetime, p: Project) -> Volume:
    rng = w.rng
    vol = Volume(w.ids.uuid(), rng.choice((1, 5, 10, 20, 50, 100)), p)
    ctx = user_ctx(w, p)
    url = f"http://192.168.10.11:8776/v3/{p.id}/volumes"
    s.emit(t, "cinder-api", CONTROLLER, "INFO", "cinder.api.openstack.wsgi", ctx, f"POST {url}")
    s.emit(after(t, 0.01), "cinder-api", CONTROLLER, "INFO", "cinder.api.v3.volumes", ctx,
           f"Create volume of {vol.size} GB")
    s.emit(after(t, rng.uniform(0.1, 0.3)), "cinder-api", CONTROLLER, "INFO", "cinder.volume.api", ctx,
           "Create volume request issued successfully.")
    s.emit(after(t, 0.31), "cinder-api", CONTROLLER, "INFO", "cinder.api.openstack.wsgi", ctx,
           f"{url} returned with HTTP 202")
    t = after(t, rng.uniform(0.5, 1.2))
    spec = f"{{'status': 'creating', 'volume_name': 'volume-{vol.id}', 'volume_size': {vol.size}}}"
    s.emit(t, CV, CONTROLLER, "INFO", CREATE_FLOW, ctx, f"Volume {vol.id}: being created as raw with specification: "
           + spec)
    t = after(t, rng.uniform(0.4, 1.5))
    s.emit(t, CV, CONTROLLER, "INFO", CREATE_FLOW, ctx, f"Volume volume-{vol.id} ({vol.id}): created successfully")
    s.emit(after(t, 0.02), CV, CONTROLLER, "INFO", "cinder.volume.manager", ctx, "Created volume successfully.")
    w.volumes[vol.id] = vol
    return vol


def attach_begin(s: Sink, w: World, t: datetime, inst: Instance, vol: Volume) -> tuple[Ctx, str, datetime]:
    """API call (reserve device, create attachment) and the compute host starting the attach."""
    rng, p = w.rng, inst.project
    ctx = user_ctx(w, p)
    att = w.ids.uuid()
    cctx = user_ctx(w, p, global_req=ctx.req)
    apilog.cinder_api(s, w, after(t, 0.15), cctx, "POST", f"/v3/{p.id}/attachments", 200, rng.uniform(0.1, 0.3))
    took = rng.uniform(0.5, 1.1)
    apilog.nova_api(s, w, after(t, took), ctx, rng.choice(CLIENT_IPS), "POST",
                    f"/v2.1/{p.id}/servers/{inst.uuid}/os-volume_attachments", 200, rng.randint(370, 400), took)
    device = "/dev/vd" + "bcdefgh"[len(inst.volumes)]
    t = after(t, took + rng.uniform(0.1, 0.4))
    assert inst.host is not None
    s.emit(t, NC, inst.host, "INFO", MGR, ctx, f"Attaching volume {vol.id} to {device}", instance=inst.uuid)
    return ctx, att, t


def attach_finish(s: Sink, w: World, t: datetime, inst: Instance, vol: Volume, ctx: Ctx, att: str) -> None:
    rng, p = w.rng, inst.project
    cctx = user_ctx(w, p, global_req=ctx.req)
    t_up = after(t, rng.uniform(0.1, 0.3))
    s.emit(after(t_up, rng.uniform(0.3, 0.9)), CV, CONTROLLER, "INFO", "cinder.volume.manager", cctx,
           "attachment_update completed successfully.")
    end = apilog.cinder_api(s, w, t_up, cctx, "PUT", f"/v3/{p.id}/attachments/{att}", 200, rng.uniform(1.0, 1.6))
    apilog.cinder_api(s, w, after(end, rng.uniform(1.5, 3.0)), user_ctx(w, p, global_req=ctx.req), "POST",
                      f"/v3/{p.id}/attachments/{att}/action", 204)
    vol.instance = inst.uuid
    inst.volumes.append(vol.id)


def attach(s: Sink, w: World, t: datetime, inst: Instance, vol: Volume) -> None:
    ctx, att, t = attach_begin(s, w, t, inst, vol)
    attach_finish(s, w, t, inst, vol, ctx, att)
