"""Multi-service request flows (boot, delete, volume attach), split into steps so faults can break one midway.

A boot is: nova-api accepts it -> scheduler + placement pick a host -> nova-compute claims, builds the disk and
plugs the VIF -> the OVS agent wires the port -> neutron tells nova-api the VIF is plugged -> the guest resumes.
Each step advances ``Build.t`` so later steps and the ``Took N seconds`` messages stay consistent with the clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from . import apilog
from .apilog import bare_ctx, service_ctx, user_ctx
from .events import Ctx, Sink
from .ids import CLIENT_IPS, CONTROLLER, CONTROLLER_IP, after
from .world import Instance, Project, World

NC = "nova-compute"
MGR = "nova.compute.manager"
DRV = "nova.virt.libvirt.driver"
OVS = "neutron-openvswitch-agent"
OVS_LOG = "neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent"
DHCP = "neutron-dhcp-agent"
DHCP_LOG = "neutron.agent.dhcp.agent"
FILTERS = ("AvailabilityZoneFilter", "ComputeFilter", "ComputeCapabilitiesFilter", "ImagePropertiesFilter",
           "ServerGroupAntiAffinityFilter", "ServerGroupAffinityFilter")


@dataclass
class Build:
    inst: Instance
    ctx: Ctx
    client: str
    t: datetime
    started: datetime | None = None  # claim time, for "Took N seconds to build instance"
    spawn_start: datetime | None = None


def vif_repr(inst: Instance) -> str:
    return (f"VIFOpenVSwitch(active=False,address={inst.mac},bridge_name='br-int',has_traffic_filtering=True,"
            f"id={inst.port},network=Network({inst.network.id}),plugin='ovs',port_profile=VIFPortProfileOpenVSwitch,"
            f"preserve_on_delete=False,vif_name='tap{inst.port[:11]}')")


def alloc_query(inst: Instance) -> str:
    f = inst.flavor
    return (f"/placement/allocation_candidates?limit=1000&resources=DISK_GB%3A{f.disk}%2CMEMORY_MB%3A{f.ram}"
            f"%2CVCPU%3A{f.vcpus}&root_required=%21COMPUTE_STATUS_DISABLED")


def request_boot(s: Sink, w: World, t: datetime, project: Project, inst: Instance | None = None) -> Build:
    """nova-api side of ``POST /servers``: token check, image and network lookups, then 202."""
    rng = w.rng
    inst = inst or w.new_instance(project)
    ctx = user_ctx(w, project)
    client = rng.choice(CLIENT_IPS)
    if rng.random() < 0.35:
        apilog.token_validation(s, w, after(t, 0.004))
    apilog.glance_api(s, w, after(t, rng.uniform(0.03, 0.08)), user_ctx(w, project, global_req=ctx.req),
                      CONTROLLER_IP, "GET", f"/v2/images/{inst.image.id}", 200, rng.randint(1100, 1500))
    apilog.neutron_api(s, w, after(t, rng.uniform(0.1, 0.16)), user_ctx(w, project, global_req=ctx.req),
                       CONTROLLER_IP, "GET", f"/v2.0/networks?id={inst.network.id}", 200, rng.randint(780, 900))
    took = rng.uniform(0.35, 1.3)
    apilog.nova_api(s, w, after(t, took), ctx, client, "POST", f"/v2.1/{project.id}/servers", 202,
                    rng.randint(400, 460), took)
    return Build(inst, ctx, client, after(t, took + rng.uniform(0.02, 0.1)))


def pick_host(w: World, inst: Instance, avoid: set[str] = frozenset()) -> str | None:
    """The default weigher: most free RAM wins among hosts that still fit the flavor."""
    fits = [h.name for h in w.hosts if h.name not in avoid and w.free_ram(h.name) >= inst.flavor.ram]
    return max(fits, key=w.free_ram) if fits else None


def schedule(s: Sink, w: World, b: Build, host: str) -> None:
    """Conductor asks the scheduler, which asks placement for candidates and claims on ``host``."""
    rng, inst, t = w.rng, b.inst, b.t
    s.emit(t, "nova-scheduler", CONTROLLER, "DEBUG", "nova.scheduler.manager", b.ctx,
           f"Starting to schedule for instances: ['{inst.uuid}']")
    t1 = after(t, rng.uniform(0.02, 0.06))
    sched = service_ctx(w, "nova", global_req=b.ctx.req)
    apilog.placement_api(s, w, t1, sched, CONTROLLER_IP, "GET", alloc_query(inst), 200,
                         900 + 1050 * len(w.hosts) + rng.randint(0, 90))
    weighed = ", ".join(
        f"WeighedHost [host: ({h.name}, {h.name}) ram: {w.free_ram(h.name)}MB "
        f"disk: {(h.disk - w.usage(h.name)[1]) * 1024}MB io_ops: 0 instances: {len(w.on_host(h.name))}, "
        f"weight: {2.0 if h.name == host else round(rng.uniform(0.2, 1.8), 10)}]"
        for h in sorted(w.hosts, key=lambda h: h.name != host))
    t2 = after(t1, rng.uniform(0.03, 0.08))
    s.emit(t2, "nova-scheduler", CONTROLLER, "DEBUG", "nova.scheduler.manager", b.ctx, f"Weighed [{weighed}]")
    apilog.placement_api(s, w, after(t2, 0.02), sched, CONTROLLER_IP, "PUT", f"/placement/allocations/{inst.uuid}",
                         204, 0, "1.36")
    took = (after(t2, 0.05) - t).total_seconds()
    s.emit(after(t2, 0.06), "nova-conductor", CONTROLLER, "DEBUG", "nova.conductor.manager", b.ctx,
           f"Took {took:.2f} seconds to select destinations for 1 instance(s).")
    inst.host = host
    b.t = after(t2, rng.uniform(0.1, 0.3))


def prepare(s: Sink, w: World, b: Build, *, image_ok: bool = True, start_guest: bool = True) -> None:
    """nova-compute: claim, disk, neutron port, DHCP, VIF plug; ends with the guest started paused.

    ``image_ok=False`` stops after the port is bound (the image never lands); ``start_guest=False`` stops after
    the VIF is plugged (the domain never starts). Faults finish the story from there.
    """
    rng, inst, host = w.rng, b.inst, b.inst.host
    assert host is not None
    p = inst.project
    t = b.t
    b.started = t
    s.emit(t, NC, host, "INFO", "nova.compute.claims", b.ctx, f"Claim successful on node {host}", instance=inst.uuid)
    s.emit(after(t, 0.21), NC, host, "DEBUG", MGR, b.ctx, "Start building networks asynchronously for instance.",
           instance=inst.uuid)
    t = after(t, rng.uniform(0.4, 0.9))
    b.spawn_start = t
    s.emit(t, NC, host, "INFO", DRV, b.ctx, "Creating image(s)", instance=inst.uuid)
    hst = w.host[host]
    if image_ok and inst.image.id not in hst.cached_images:
        took = inst.image.size / rng.uniform(90e6, 160e6)
        t = after(t, took)
        apilog.glance_api(s, w, t, user_ctx(w, p, global_req=b.ctx.req), hst.ip, "GET",
                          f"/v2/images/{inst.image.id}/file", 200, inst.image.size, took)
        hst.cached_images.add(inst.image.id)
    nctx = user_ctx(w, p, global_req=b.ctx.req)
    t_port = after(b.started, rng.uniform(0.5, 1.1))
    apilog.neutron_api(s, w, t_port, nctx, hst.ip, "POST", "/v2.0/ports", 201, rng.randint(1150, 1300))
    t_bind = after(t_port, rng.uniform(0.2, 0.5))
    apilog.neutron_api(s, w, t_bind, service_ctx(w, "nova", global_req=b.ctx.req), hst.ip, "PUT",
                       f"/v2.0/ports/{inst.port}", 200, rng.randint(1300, 1450), rng.uniform(0.3, 0.9))
    dhcp_reload(s, w, after(t_bind, rng.uniform(0.05, 0.3)), inst, host)
    t = max(t, t_bind)
    if not image_ok:
        b.t = t
        return
    t = after(t, rng.uniform(0.8, 2.5))
    s.emit(t, NC, host, "INFO", "os_vif", b.ctx, f"Successfully plugged vif {vif_repr(inst)}")
    t = after(t, rng.uniform(0.3, 0.8))
    if not start_guest:
        b.t = t
        return
    inst.dom_id = rng.randint(1, 400)
    tid = rng.choice(w.libvirt_tids[host])
    s.libvirt(t, host, tid, "warning", "qemuDomainObjTaintMsg:6600",
              f"Domain id={inst.dom_id} name='{inst.domain}' uuid={inst.uuid} is tainted: host-cpu")
    t = after(t, rng.uniform(0.2, 0.5))
    lifecycle(s, w, t, inst, "Started")
    lifecycle(s, w, after(t, 0.02), inst, "Paused", pending="spawning")
    b.t = after(t, 0.05)


def dhcp_reload(s: Sink, w: World, t: datetime, inst: Instance, host: str) -> None:
    net = inst.network
    port = (f"admin_state_up=True, allowed_address_pairs=[], binding:host_id={host}, binding:profile=, "
            f"binding:vif_details=bridge_name=br-int, connectivity=l2, datapath_type=system, ovs_hybrid_plug=False, "
            f"port_filter=True, binding:vif_type=ovs, binding:vnic_type=normal, created_at={t:%Y-%m-%dT%H:%M:%S}Z, "
            f"description=, device_id={inst.uuid}, device_owner=compute:nova, extra_dhcp_opts=[], "
            f"fixed_ips=[{{'subnet_id': '{net.subnet}', 'ip_address': '{inst.ip}'}}], id={inst.port}, "
            f"mac_address={inst.mac}, name=, network_id={net.id}, port_security_enabled=True, "
            f"project_id={inst.project.id}, qos_network_policy_id=None, qos_policy_id=None, resource_request=None, "
            f"revision_number=2, security_groups=['{net.sg}'], status=DOWN, tags=[], tenant_id={inst.project.id}, "
            f"updated_at={t:%Y-%m-%dT%H:%M:%S}Z")
    s.emit(t, DHCP, CONTROLLER, "INFO", DHCP_LOG, Ctx(), f"Trigger reload_allocations for port {port}")
    s.emit(after(t, w.rng.uniform(0.1, 0.4)), DHCP, CONTROLLER, "INFO", DHCP_LOG,
           Ctx(w.agent_req(DHCP, CONTROLLER)), f"DHCP configuration for ports {{'{inst.port}'}} is completed")


def lifecycle(s: Sink, w: World, t: datetime, inst: Instance, what: str, *, pending: str | None = None,
              role: str | None = None) -> None:
    """Libvirt lifecycle events reach nova-compute with a fresh, user-less context."""
    assert inst.host is not None
    s.emit(t, NC, inst.host, "INFO", MGR, bare_ctx(w), f"VM {what} (Lifecycle Event)", instance=inst.uuid,
           role=role)
    if pending:
        s.emit(after(t, w.rng.uniform(0.05, 0.2)), NC, inst.host, "INFO", MGR, bare_ctx(w),
               f"During sync_power_state the instance has a pending task ({pending}). Skip.", instance=inst.uuid)


def wire_port(s: Sink, w: World, b: Build) -> None:
    """OVS agent wires the tap, neutron reports network-vif-plugged, nova-api routes it to the compute host."""
    rng, inst = w.rng, b.inst
    host = inst.host
    assert host is not None
    hst = w.host[host]
    actx = Ctx(w.agent_req(OVS, host))
    t = after(b.t, rng.uniform(0.3, 1.5))
    net = inst.network
    if net.id not in hst.local_vlans:
        hst.local_vlans[net.id] = len(hst.local_vlans) + 1
        s.emit(t, OVS, host, "INFO", OVS_LOG, actx,
               f"Assigning {hst.local_vlans[net.id]} as local vlan for net-id={net.id}, seg-id={net.seg}")
    s.emit(after(t, 0.01), OVS, host, "INFO", "neutron.agent.securitygroups_rpc", actx,
           f"Preparing filters for devices {{'{inst.port}'}}")
    details = (f"{{'device': '{inst.port}', 'device_id': '{inst.uuid}', 'network_id': '{net.id}', "
               f"'port_id': '{inst.port}', 'mac_address': '{inst.mac}', 'admin_state_up': True, "
               f"'network_type': 'vxlan', 'segmentation_id': {net.seg}, 'physical_network': None, "
               f"'fixed_ips': [{{'subnet_id': '{net.subnet}', 'ip_address': '{inst.ip}'}}], "
               f"'device_owner': 'compute:nova', 'allowed_address_pairs': [], 'port_security_enabled': True, "
               f"'qos_policy_id': None, 'network_qos_policy_id': None, 'profile': {{}}, 'vif_type': 'ovs', "
               f"'vnic_type': 'normal', 'security_groups': ['{net.sg}']}}")
    t = after(t, rng.uniform(0.2, 0.5))
    s.emit(t, OVS, host, "INFO", OVS_LOG, actx, f"Port {inst.port} updated. Details: {details}")
    t = after(t, rng.uniform(0.2, 0.6))
    s.emit(t, OVS, host, "INFO", OVS_LOG, actx,
           f"Configuration for devices up ['{inst.port}'] and devices down [] completed.")
    t = after(t, rng.uniform(0.1, 0.3))
    event = (f"{{'name': 'network-vif-plugged', 'server_uuid': '{inst.uuid}', 'tag': '{inst.port}', "
             f"'status': 'completed', 'code': 200}}")
    ectx = service_ctx(w, "neutron")
    s.emit(after(t, 0.01), "nova-api", CONTROLLER, "INFO", "nova.api.openstack.compute.server_external_events",
           ectx, f"Creating event network-vif-plugged:{inst.port} for instance {inst.uuid} on {host}")
    took = rng.uniform(0.04, 0.12)
    apilog.nova_api(s, w, after(t, took), ectx, CONTROLLER_IP, "POST", "/v2.1/os-server-external-events", 200,
                    183, took)
    s.emit(after(t, took + 0.01), "neutron-server", CONTROLLER, "INFO", "neutron.notifiers.nova", Ctx(),
           f"Nova event response: {event}.")
    b.t = after(t, took + rng.uniform(0.05, 0.2))


def finish(s: Sink, w: World, b: Build) -> None:
    """Guest resumed, spawn and build timings, and the user's client seeing ACTIVE."""
    rng, inst = w.rng, b.inst
    assert inst.host is not None and b.started and b.spawn_start
    t = after(b.t, rng.uniform(0.1, 0.4))
    lifecycle(s, w, t, inst, "Resumed", pending="spawning")
    t = after(t, 0.03)
    s.emit(t, NC, inst.host, "INFO", DRV, b.ctx, "Instance spawned successfully.", instance=inst.uuid)
    spawn = (t - b.spawn_start).total_seconds()
    s.emit(after(t, 0.001), NC, inst.host, "INFO", MGR, b.ctx,
           f"Took {spawn:.2f} seconds to spawn the instance on the hypervisor.", instance=inst.uuid)
    build = (t - b.started).total_seconds() + 0.1
    s.emit(after(t, 0.1), NC, inst.host, "INFO", MGR, b.ctx, f"Took {build:.2f} seconds to build instance.",
           instance=inst.uuid)
    inst.state = "active"
    b.t = after(t, 0.1)
    poll_server(s, w, after(t, rng.uniform(0.5, 3)), inst)


def poll_server(s: Sink, w: World, t: datetime, inst: Instance, status: int = 200) -> None:
    p = inst.project
    took = w.rng.uniform(0.08, 0.3)
    apilog.nova_api(s, w, t, user_ctx(w, p), w.rng.choice(CLIENT_IPS), "GET", f"/v2.1/{p.id}/servers/{inst.uuid}",
                    status, w.rng.randint(1650, 1950), took)


def boot(s: Sink, w: World, t: datetime, project: Project, host: str | None = None, **kw) -> Build | None:
    """A complete, successful boot; ``host`` forces placement (used to keep every host's files non-empty)."""
    b = request_boot(s, w, t, project, w.new_instance(project, **kw))
    host = host or pick_host(w, b.inst)
    if host is None:
        del w.instances[b.inst.uuid]
        return None
    schedule(s, w, b, host)
    prepare(s, w, b)
    wire_port(s, w, b)
    finish(s, w, b)
    return b


def teardown(s: Sink, w: World, t: datetime, inst: Instance, ctx: Ctx, *, lifecycle_event: bool = True,
             pending: str = "deleting") -> datetime:
    """Destroy the guest, unplug the VIF, remove the files; shared by deletes and failed builds."""
    rng, host = w.rng, inst.host
    assert host is not None
    t0 = t
    s.emit(t, NC, host, "INFO", DRV, ctx, "Instance destroyed successfully.", instance=inst.uuid)
    if lifecycle_event:
        lifecycle(s, w, after(t, rng.uniform(0.05, 0.3)), inst, "Stopped", pending=pending)
    t = after(t, rng.uniform(0.1, 0.3))
    s.emit(t, NC, host, "INFO", "os_vif", ctx, f"Successfully unplugged vif {vif_repr(inst)}")
    t = after(t, rng.uniform(0.05, 0.2))
    path = f"/var/lib/nova/instances/{inst.uuid}_del"
    s.emit(t, NC, host, "INFO", DRV, ctx, f"Deleting instance files {path}", instance=inst.uuid)
    t = after(t, rng.uniform(0.01, 0.05))
    s.emit(t, NC, host, "INFO", DRV, ctx, f"Deletion of {path} complete", instance=inst.uuid)
    s.emit(after(t, 0.01), NC, host, "INFO", MGR, ctx,
           f"Took {(t - t0).total_seconds() + 0.6:.2f} seconds to destroy the instance on the hypervisor.",
           instance=inst.uuid)
    return after(t, 0.02)


def release_network(s: Sink, w: World, t: datetime, inst: Instance, ctx: Ctx, *, agent: bool = True) -> datetime:
    """Delete the port (neutron, and the OVS agent if it ever wired it) and the placement allocation."""
    rng, host = w.rng, inst.host
    assert host is not None
    took = rng.uniform(0.3, 0.9)
    apilog.neutron_api(s, w, after(t, took - 0.05), user_ctx(w, inst.project, global_req=ctx.req),
                       w.host[host].ip, "DELETE", f"/v2.0/ports/{inst.port}", 204, 0)
    if agent:
        actx = Ctx(w.agent_req(OVS, host))
        ta = after(t, took + rng.uniform(0.1, 0.6))
        s.emit(ta, OVS, host, "INFO", "neutron.agent.securitygroups_rpc", actx,
               f"Remove device filter for ['{inst.port}']")
        s.emit(after(ta, 0.02), OVS, host, "INFO", OVS_LOG, actx, f"Ports {{'{inst.port}'}} removed")
    t = after(t, took)
    s.emit(t, NC, host, "INFO", MGR, ctx, f"Took {took:.2f} seconds to deallocate network for instance.",
           instance=inst.uuid)
    apilog.placement_api(s, w, after(t, 0.05), service_ctx(w, "nova", global_req=ctx.req), w.host[host].ip,
                         "DELETE", f"/placement/allocations/{inst.uuid}", 204, 0, "1.28")
    return after(t, 0.06)


def delete(s: Sink, w: World, t: datetime, inst: Instance) -> None:
    """``DELETE /servers/<id>``: local delete for never-scheduled instances, full teardown otherwise."""
    rng, p = w.rng, inst.project
    ctx = user_ctx(w, p)
    took = rng.uniform(0.1, 0.35)
    apilog.nova_api(s, w, after(t, took), ctx, rng.choice(CLIENT_IPS), "DELETE", f"/v2.1/{p.id}/servers/{inst.uuid}",
                    204, 0, took)
    w.instances.pop(inst.uuid, None)
    if inst.host is None:
        return
    t = after(t, took + rng.uniform(0.05, 0.2))
    s.emit(t, NC, inst.host, "INFO", MGR, ctx, "Terminating instance", instance=inst.uuid)
    t = teardown(s, w, after(t, rng.uniform(0.4, 1.2)), inst, ctx, lifecycle_event=inst.state == "active")
    release_network(s, w, t, inst, ctx)
