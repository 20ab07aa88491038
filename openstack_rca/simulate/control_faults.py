"""Control-plane faults: the broker, the conductor's DB pool, keystone credentials, scheduler capacity.

Each injector writes the causal lines first (tagged ``root_cause``) and then the downstream symptoms in the other
services (tagged ``symptom``), the way they follow one another in a real incident.
"""

from __future__ import annotations

from datetime import datetime

from . import apilog, flows, tracebacks
from .apilog import bare_ctx, user_ctx
from .events import NO_CTX, ROOT, SYMPTOM, Ctx
from .ids import AMQP_PORT, CLIENT_IPS, CONTROLLER, CONTROLLER_IP, after
from .window import FaultCtx
from .world import FLAVOR, FLAVORS

RABBIT_LOG = "oslo.messaging._drivers.impl_rabbit"
BROKER = f"{CONTROLLER_IP}:{AMQP_PORT}"


def _connections(fx: FaultCtx) -> list[tuple[str, str]]:
    """(service, host) of every process holding an AMQP connection, most important first."""
    w = fx.w
    conns = [("nova-conductor", CONTROLLER)] + [("nova-compute", h.name) for h in w.hosts]
    conns += [("nova-api", CONTROLLER), ("neutron-server", CONTROLLER), ("nova-scheduler", CONTROLLER)]
    conns += [("neutron-openvswitch-agent", h.name) for h in w.hosts]
    conns += [("neutron-dhcp-agent", CONTROLLER), ("cinder-volume", CONTROLLER)]
    return conns


def rabbitmq_outage(fx: FaultCtx) -> str:
    """Memory alarm, then the broker is OOM-killed: every client loops on ECONNREFUSED until it is back."""
    s, w, rng, t0 = fx.s, fx.w, fx.rng, fx.t0
    alarm = w.erl["alarm"]
    s.rabbit(t0, "warning", alarm,
             f"vm_memory_high_watermark set. Memory used:{rng.randint(3342000000, 3420000000)} allowed:3341430374",
             role=ROOT)
    s.rabbit(after(t0, 0.001), "warning", alarm, "memory resource limit alarm set on node rabbit@controller.",
             role=ROOT)
    for n, text in enumerate(("*" * 58, "*** Publishers will be blocked until this alarm clears ***", "*" * 58)):
        s.rabbit(after(t0, 0.002 + n * 1e-4), "warning", alarm, text)
    for svc in ("nova-conductor", "neutron-server", "nova-api"):
        s.emit(after(t0, rng.uniform(0.2, 2.0)), svc, CONTROLLER, "ERROR", RABBIT_LOG, NO_CTX,
               "The broker has blocked the connection: low on memory", role=SYMPTOM)

    t_kill = after(t0, rng.uniform(20, 40))
    down = min(240.0, max(80.0, fx.budget * 0.5)) * rng.uniform(0.85, 1.15)
    t_up = after(t_kill, down)
    fx.dis.end = after(t_up, 20)
    conns = _connections(fx)[: max(4, min(len(_connections(fx)), fx.budget // 30))]

    first = None
    for svc, host in conns:
        cid, t, sleep = fx.ids.uuid(), after(t_kill, rng.uniform(0.05, 1.5)), 1
        err = "[Errno 104] Connection reset by peer", "ConnectionResetError: [Errno 104] Connection reset by peer"
        while t < t_up:
            ev = s.emit(t, svc, host, "ERROR", RABBIT_LOG, NO_CTX,
                        f"[{cid}] AMQP server on {BROKER} is unreachable: {err[0]}. Trying again in {sleep} seconds."
                        f": {err[1]}", role=SYMPTOM)
            first = ev if first is None or ev.t < first.t else first
            err = "[Errno 111] ECONNREFUSED", "ConnectionRefusedError: [Errno 111] ECONNREFUSED"
            t = after(t, sleep + rng.uniform(0.001, 0.02))
            sleep = min(30, sleep + 2)
        _reconnect(fx, svc, host, cid, after(t, rng.uniform(0.01, 0.05)))
    if first is not None:
        first.role = ROOT

    boot = w.erl["boot"]
    for n, text in enumerate(("Starting RabbitMQ 3.12.13 on Erlang 26.2.5 [jit]",
                              "Memory high watermark set to 3186 MiB (3341430374 bytes) of 7966 MiB (8353575936 "
                              "bytes) total", "Running boot step recovery defined by app rabbit")):
        s.rabbit(after(t_up, -4 + n * 0.4), "info", boot, text)
    s.rabbit(after(t_up, -0.3), "info", w.erl["listener"], "started TCP listener on [::]:5672")
    s.rabbit(after(t_up, -0.1), "info", boot, "Server startup complete; 4 plugins started.")

    # RPC calls made while the broker is gone time out after rpc_response_timeout (60 s).
    last_call = after(t_up, -62)
    for host in [h.name for h in w.hosts]:
        tb = tracebacks.messaging_timeout("report_state", fx.ids.hex32())
        t = after(t_kill, rng.uniform(60.5, 70))
        if t < t_up and fx.left() > len(tb) + 40:
            s.emit(t, "nova-compute", host, "ERROR", "nova.servicegroup.drivers.db", NO_CTX,
                   f"Unexpected error while reporting service status: {tb[-1]}", trace=tb, role=SYMPTOM)
    t = after(t_kill, rng.uniform(3, 10))
    calls = 0
    while t < last_call and fx.left() > 45:
        _api_timeout(fx, t, "attach_volume" if calls % 2 == 0 else "console_output")
        calls += 1
        t = after(t, rng.uniform(15, 45))
    agents = [("neutron-openvswitch-agent", h.name, "agent_state") for h in w.hosts]
    for svc, host, caller in agents + [("neutron-dhcp-agent", CONTROLLER, "dhcp_state")]:
        tb = tracebacks.messaging_timeout(caller, fx.ids.hex32())
        t = after(t_kill, rng.uniform(61, 90))
        if t < t_up and fx.left() > len(tb):
            log = flows.OVS_LOG if caller == "agent_state" else flows.DHCP_LOG
            s.emit(t, svc, host, "ERROR", log, NO_CTX, f"Failed reporting state!: {tb[-1]}", trace=tb, role=SYMPTOM)
    return ("RabbitMQ on the controller hit its memory high watermark and was then OOM-killed; every OpenStack "
            f"service lost its AMQP connection for about {int(down)} s, so RPC calls timed out and API calls failed.")


def _reconnect(fx: FaultCtx, svc: str, host: str, cid: str, t: datetime) -> None:
    s, w = fx.s, fx.w
    port = fx.ids.port()
    erl = fx.ids.erl_pid()
    peer = f"{w.service_ip(host)}:{port} -> {BROKER}"
    s.rabbit(after(t, -0.004), "info", erl, f"accepting AMQP connection {erl} ({peer})")
    s.rabbit(after(t, -0.002), "info", erl, f"connection {erl} ({peer} - {svc}:{w.pid(svc, host)}:{cid}): user "
             "'openstack' authenticated and granted access to vhost '/'")
    s.emit(t, svc, host, "INFO", RABBIT_LOG, NO_CTX,
           f"[{cid}] Reconnected to AMQP server on {BROKER} via [amqp] client with port {port}.")


def _api_timeout(fx: FaultCtx, t: datetime, caller: str) -> None:
    """A user API call that needs an RPC reply (attach, console log): 60 s later nova-api gives up with 500."""
    s, w, rng = fx.s, fx.w, fx.rng
    guests = [i for i in w.instances.values() if i.state == "active"]
    if not guests:
        return
    inst = rng.choice(guests)
    p = inst.project
    ctx = user_ctx(w, p)
    tb = tracebacks.messaging_timeout(caller, fx.ids.hex32())
    end = after(t, 60 + rng.uniform(0.01, 0.2))
    s.emit(end, "nova-api", CONTROLLER, "ERROR", "nova.api.openstack.wsgi", ctx,
           f"Unexpected exception in API method: {tb[-1]}", trace=tb, role=SYMPTOM)
    s.emit(after(end, 0.002), "nova-api", CONTROLLER, "INFO", "nova.api.openstack.wsgi", ctx,
           "HTTP exception thrown: Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ "
           "and attach the Nova API log if possible.")
    path = (f"/v2.1/{p.id}/servers/{inst.uuid}/os-volume_attachments" if caller == "attach_volume"
            else f"/v2.1/{p.id}/servers/{inst.uuid}/action")
    apilog.nova_api(s, w, after(end, 0.004), ctx, rng.choice(CLIENT_IPS), "POST", path, 500, 216,
                    (end - t).total_seconds(), role=SYMPTOM)
    fx.affect(instance=inst.uuid, request=ctx.req)


def db_pool_exhausted(fx: FaultCtx) -> str:
    """nova-conductor's SQLAlchemy pool (5 + 10 overflow) is exhausted: its RPC handlers time out after 30 s."""
    s, w, rng, t0 = fx.s, fx.w, fx.rng, fx.t0
    dur = min(420.0, max(120.0, fx.budget * 0.9)) * rng.uniform(0.85, 1.15)
    t_end = after(t0, dur)
    fx.dis.end = after(t_end, 10)
    cond = "nova-conductor"
    # Builds arriving while the pool is dry: accepted by nova-api, then lost in the conductor.
    t, n = after(t0, -30.2), 0
    while t < after(t_end, -31) and (n < 1 or fx.left() > 60):
        b = flows.request_boot(s, w, t, rng.choice(w.projects))
        tb = tracebacks.queuepool_timeout()
        s.emit(after(b.t, 30 + rng.uniform(0.001, 0.05)), cond, CONTROLLER, "ERROR", "oslo_messaging.rpc.server",
               b.ctx, f"Exception during message handling: {tb[-1]}", trace=tb, role=ROOT if n == 0 else SYMPTOM)
        fx.affect(instance=b.inst.uuid, request=b.ctx.req)
        n += 1
        t = after(t, rng.uniform(25, 70))
    # Compute hosts: service heartbeats and resource audits go through the conductor and come back as RemoteError.
    for h in w.hosts:
        t = after(t0, rng.uniform(2, 25))
        while t < t_end and fx.left() > 30:
            tb = tracebacks.remote_queuepool("report_state")
            s.emit(t, "nova-compute", h.name, "ERROR", "nova.servicegroup.drivers.db", NO_CTX,
                   f"Unexpected error while reporting service status: {tb[-1]}", trace=tb, role=SYMPTOM)
            t = after(t, rng.uniform(50, 80))
        t = after(t0, rng.uniform(30, 60))
        if t < t_end and fx.left() > 30:
            tb = tracebacks.update_resources_remote()
            s.emit(t, "nova-compute", h.name, "ERROR", flows.MGR, bare_ctx(w),
                   f"Error updating resources for node {h.name}.: {tb[-1]}", trace=tb, role=SYMPTOM)
    # MariaDB sees the connections the stuck conductor workers abandon.
    for _ in range(rng.randint(2, 4)):
        w.mysql_thread += rng.randint(3, 30)
        s.mysql(after(t0, rng.uniform(5, dur)), w.mysql_thread, "Warning",
                f"Aborted connection {w.mysql_thread} to db: 'nova_cell1' user: 'nova' host: '{CONTROLLER_IP}' "
                "(Got timeout reading communication packets)", role=SYMPTOM)
    return ("nova-conductor exhausted its database connection pool (pool size 5, overflow 10); its RPC handlers "
            f"timed out waiting for a connection for about {int(dur / 60)} minutes, so builds stalled and compute "
            "hosts could not report in.")


def keystone_auth_failure(fx: FaultCtx) -> str:
    """The nova service user's password changed in keystone but not in nova.conf: nova-api answers 503."""
    s, w, rng, t0 = fx.s, fx.w, fx.rng, fx.t0
    admin = w.admin
    apilog.keystone_request(s, w, after(t0, -rng.uniform(40, 200)), user_ctx(w, admin), "PATCH",
                            f"/v3/users/{w.service_users['nova'].user_id}")
    fx.dis.end = None
    t, n = t0, 0
    gap = max(4.0, (fx.end - t0).total_seconds() / max(2.0, fx.budget / 12))
    ksm = "keystonemiddleware.auth_token"
    while t < after(fx.end, -5) and (n < 2 or fx.left() > 14):
        for attempt in range(2):
            tk = after(t, 0.01 + attempt * 0.09)
            kctx = Ctx(fx.ids.req())
            apilog.keystone_request(s, w, tk, kctx, "POST", "/v3/auth/tokens")
            s.emit(after(tk, 0.03), "keystone", CONTROLLER, "WARNING", "keystone.server.flask.application", kctx,
                   f"Authorization failed. The request you have made requires authentication. from {CONTROLLER_IP}",
                   role=ROOT if n == 0 and attempt == 0 else SYMPTOM)
            fx.affect(request=kctx.req)
            s.emit(after(tk, 0.035), "nova-api", CONTROLLER, "INFO", ksm, NO_CTX,
                   "Identity server rejected authorization")
            s.emit(after(tk, 0.036), "nova-api", CONTROLLER, "WARNING", ksm, NO_CTX,
                   'Identity response: {"error": {"code": 401, "message": "The request you have made requires '
                   'authentication.", "title": "Unauthorized"}}', role=ROOT if n == 0 and attempt == 0 else SYMPTOM)
            if attempt == 0:
                s.emit(after(tk, 0.037), "nova-api", CONTROLLER, "INFO", ksm, NO_CTX, "Retrying validation")
        end = after(t, 0.16)
        s.emit(end, "nova-api", CONTROLLER, "CRITICAL", ksm, NO_CTX,
               "Unable to validate token: Identity server rejected authorization necessary to fetch token data",
               role=SYMPTOM)
        p = rng.choice(w.projects)
        method, path = rng.choice((("GET", f"/v2.1/{p.id}/servers/detail"), ("GET", f"/v2.1/{p.id}/servers/detail"),
                                   ("POST", f"/v2.1/{p.id}/servers"), ("GET", f"/v2.1/{p.id}/flavors/detail")))
        apilog.nova_api(s, w, after(end, 0.001), NO_CTX, rng.choice(CLIENT_IPS), method, path, 503, 218,
                        (end - t).total_seconds() + 0.001, role=SYMPTOM)
        n += 1
        t = after(t, gap * rng.uniform(0.5, 1.5))
    return ("The nova service user's password was changed in Keystone but not in nova.conf [keystone_authtoken], so "
            "nova-api can no longer validate tokens and rejects every compute API request with 503.")


def no_valid_host(fx: FaultCtx) -> str:
    """A tenant's burst of large guests eats the last free RAM; later boots get no allocation candidates."""
    s, w, rng, t0 = fx.s, fx.w, fx.rng, fx.t0
    burst = next(p for p in w.projects if p.name == "data-lab")
    big = FLAVOR["m1.xlarge"]
    needed = sum(w.free_ram(h.name) // big.ram for h in w.hosts)
    t = after(t0, -20 - 8 * needed - rng.uniform(10, 40))
    burst_ids = []
    while any(w.free_ram(h.name) >= big.ram for h in w.hosts):
        b = flows.boot(s, w, t, burst, flavor=big)
        if b is None:
            break
        burst_ids.append(b.inst)
        t = after(t, rng.uniform(3, 8))
    most_free = max(w.free_ram(h.name) for h in w.hosts)
    want = next((f for f in FLAVORS if f.ram > most_free), big)
    dur = min(900.0, max(240.0, fx.budget * 1.5)) * rng.uniform(0.85, 1.15)
    t_end = after(t0, dur)
    t, n = t0, 0
    while t < t_end and (n < 1 or fx.left() > 40):
        p = burst if rng.random() < 0.6 else rng.choice(w.projects)
        b = flows.request_boot(s, w, after(t, -1.2), p, w.new_instance(p, want))
        inst = b.inst
        sched = b.t
        s.emit(sched, "nova-scheduler", CONTROLLER, "DEBUG", "nova.scheduler.manager", b.ctx,
               f"Starting to schedule for instances: ['{inst.uuid}']")
        apilog.placement_api(s, w, after(sched, 0.03), apilog.service_ctx(w, "nova", global_req=b.ctx.req),
                             CONTROLLER_IP, "GET", flows.alloc_query(inst), 200, 52)
        s.emit(after(sched, 0.04), "nova-scheduler", CONTROLLER, "INFO", "nova.scheduler.manager", b.ctx,
               "Got no allocation candidates from the Placement API. This could be due to insufficient resources or "
               "a temporary occurrence as compute nodes start up.", role=ROOT if n == 0 else SYMPTOM)
        tb = tracebacks.no_valid_host()
        te = after(sched, 0.09)
        s.emit(te, "nova-conductor", CONTROLLER, "ERROR", "nova.conductor.manager", b.ctx,
               "Failed to schedule instances: nova.exception_Remote.NoValidHost_Remote: No valid host was found. ",
               trace=tb, role=SYMPTOM)
        s.emit(after(te, 0.01), "nova-conductor", CONTROLLER, "WARNING", "nova.scheduler.utils", b.ctx,
               "Failed to compute_task_build_instances: No valid host was found. ", role=SYMPTOM)
        s.emit(after(te, 0.011), "nova-conductor", CONTROLLER, "WARNING", "nova.scheduler.utils", b.ctx,
               "Setting instance to ERROR state.", instance=inst.uuid, role=SYMPTOM)
        inst.state = "error"
        flows.poll_server(s, w, after(te, rng.uniform(2, 6)), inst)
        fx.affect(instance=inst.uuid, request=b.ctx.req)
        n += 1
        t = after(t, rng.uniform(20, 60))
    # The tenant cleans up some of its burst; capacity returns.
    t = t_end
    for inst in burst_ids[: max(1, len(burst_ids) // 2)]:
        if inst.uuid in w.instances:
            flows.delete(s, w, t, inst)
            t = after(t, rng.uniform(3, 9))
    fx.dis.end = after(t, 5)
    return (f"The compute hosts ran out of free RAM after a burst of {big.name} guests from project data-lab; "
            f"placement returned no allocation candidates and new {want.name} boots failed with NoValidHost.")
