"""Python tracebacks as the services print them, one tuple item per printed line.

oslo.log writes each of these lines as its own record under the exception prefix, so a parser and an anomaly
model see them exactly as in production. Frames follow the real call paths (nova 2023.x, oslo.messaging 14,
SQLAlchemy 1.4, libvirt-python); line numbers are plausible, not pinned to one release.
"""

from __future__ import annotations

PY = "/usr/lib/python3/dist-packages"


def _tb(*parts: str, **kw: str) -> tuple[str, ...]:
    """Join template fragments (each may start/end with newlines) and fill in the placeholders."""
    body = "\n".join(p.strip("\n") for p in parts).format(PY=PY, **kw)
    return tuple(body.split("\n"))


_RPC_WAIT = """
Traceback (most recent call last):
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 441, in get
    return self._queues[msg_id].get(block=True, timeout=timeout)
  File "{PY}/eventlet/queue.py", line 322, in get
    return waiter.wait()
  File "{PY}/eventlet/queue.py", line 141, in wait
    return get_hub().switch()
  File "{PY}/eventlet/hubs/hub.py", line 313, in switch
    return self.greenlet.switch()
_queue.Empty

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
"""

_RPC_CALL = """
  File "{PY}/oslo_messaging/rpc/client.py", line 190, in call
    result = self.transport._send(
  File "{PY}/oslo_messaging/transport.py", line 123, in _send
    return self._driver.send(target, ctxt, message,
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 689, in send
    return self._send(target, ctxt, message, wait_for_reply, timeout,
"""

_RPC_TIMEOUT_TAIL = """
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 678, in _send
    result = self._waiter.wait(msg_id, timeout,
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 567, in wait
    message = self.waiters.get(msg_id, timeout=timeout)
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 443, in get
    raise oslo_messaging.MessagingTimeout(
oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message ID {msg_id}
"""


def messaging_timeout(caller: str, msg_id: str) -> tuple[str, ...]:
    """An RPC ``call`` whose reply never came; ``caller`` picks the frames above oslo.messaging."""
    return _tb(_RPC_WAIT, _CALLERS[caller], _RPC_CALL, _RPC_TIMEOUT_TAIL, msg_id=msg_id)


_NEUTRON_REPORT_STATE = """
  File "{PY}/neutron/agent/rpc.py", line 103, in report_state
    return method(context, 'report_state', **kwargs)
  File "{PY}/neutron_lib/rpc.py", line 157, in call
    return self._original_context.call(ctxt, method, **kwargs)"""

_CALLERS = {
    "report_state": """
  File "{PY}/nova/servicegroup/drivers/db.py", line 92, in _report_state
    service.service_ref.save()
  File "{PY}/oslo_versionedobjects/base.py", line 209, in wrapper
    updates, result = self.indirection_api.object_action(
  File "{PY}/nova/conductor/rpcapi.py", line 247, in object_action
    return cctxt.call(context, 'object_action', objinst=objinst,""",
    "agent_state": """
  File "{PY}/neutron/plugins/ml2/drivers/openvswitch/agent/ovs_neutron_agent.py", line 374, in _report_state
    agent_status = self.state_rpc.report_state(self.context,""" + _NEUTRON_REPORT_STATE,
    "dhcp_state": """
  File "{PY}/neutron/agent/dhcp/agent.py", line 1052, in _report_state
    ctx, self.agent_state, True)""" + _NEUTRON_REPORT_STATE,
    "attach_volume": """
  File "{PY}/nova/api/openstack/wsgi.py", line 658, in wrapped
    return f(*args, **kwargs)
  File "{PY}/nova/api/openstack/compute/volumes.py", line 336, in create
    device = self.compute_api.attach_volume(
  File "{PY}/nova/compute/api.py", line 4735, in attach_volume
    return self._attach_volume(context, instance, volume, device,
  File "{PY}/nova/compute/api.py", line 4620, in _attach_volume
    volume_bdm = self._create_volume_bdm(
  File "{PY}/nova/compute/api.py", line 4531, in _create_volume_bdm
    volume_bdm = self.compute_rpcapi.reserve_block_device_name(
  File "{PY}/nova/compute/rpcapi.py", line 1132, in reserve_block_device_name
    return cctxt.call(ctxt, 'reserve_block_device_name', **kw)""",
    "console_output": """
  File "{PY}/nova/api/openstack/wsgi.py", line 658, in wrapped
    return f(*args, **kwargs)
  File "{PY}/nova/api/openstack/compute/console_output.py", line 60, in get_console_output
    output = self.compute_api.get_console_output(context,
  File "{PY}/nova/compute/api.py", line 4431, in get_console_output
    output = self.compute_rpcapi.get_console_output(context,
  File "{PY}/nova/compute/rpcapi.py", line 767, in get_console_output
    return cctxt.call(ctxt, 'get_console_output',""",
}

QUEUEPOOL = ("QueuePool limit of size 5 overflow 10 reached, connection timed out, timeout 30.00 "
             "(Background on this error at: https://sqlalche.me/e/14/3o7r)")


def queuepool_timeout() -> tuple[str, ...]:
    """nova-conductor handling an RPC while every pooled MySQL connection is checked out."""
    return _tb("""
Traceback (most recent call last):
  File "{PY}/oslo_messaging/rpc/server.py", line 241, in inner
    return func(*args, **kwargs)
  File "{PY}/nova/conductor/manager.py", line 1488, in schedule_and_build_instances
    instance_uuids = [spec.instance_uuid for spec in request_specs]
  File "{PY}/nova/objects/build_request.py", line 243, in get_by_instance_uuid
    db_req = cls._get_by_instance_uuid_from_db(context, instance_uuid)
  File "{PY}/oslo_db/sqlalchemy/enginefacade.py", line 1015, in wrapper
    with self._transaction_scope(context):
  File "{PY}/oslo_db/sqlalchemy/enginefacade.py", line 652, in _session
    self.session = self.factory._create_session(
  File "{PY}/sqlalchemy/orm/session.py", line 1546, in connection
    return self._connection_for_bind(
  File "{PY}/sqlalchemy/engine/base.py", line 3325, in connect
    return self._connection_cls(self, close_with_result=close_with_result)
  File "{PY}/sqlalchemy/pool/base.py", line 310, in connect
    return _ConnectionFairy._checkout(self)
  File "{PY}/sqlalchemy/pool/impl.py", line 134, in _do_get
    raise exc.TimeoutError(
sqlalchemy.exc.TimeoutError: {msg}
""", msg=QUEUEPOOL)


def remote_queuepool(caller: str) -> tuple[str, ...]:
    """A conductor-backed call from nova-compute that got the conductor's pool timeout back as RemoteError."""
    return _tb("Traceback (most recent call last):", _CALLERS[caller], """
  File "{PY}/oslo_messaging/rpc/client.py", line 190, in call
    result = self.transport._send(
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 681, in _send
    raise result
oslo_messaging.rpc.client.RemoteError: Remote error: TimeoutError {msg}
""", msg=QUEUEPOOL)


def update_resources_remote() -> tuple[str, ...]:
    return _tb("""
Traceback (most recent call last):
  File "{PY}/nova/compute/manager.py", line 10537, in _update_available_resource_for_node
    self.rt.update_available_resource(context, nodename,
  File "{PY}/nova/compute/resource_tracker.py", line 921, in update_available_resource
    self._update_available_resource(context, resources, startup=startup)
  File "{PY}/oslo_concurrency/lockutils.py", line 414, in inner
    return f(*args, **kwargs)
  File "{PY}/nova/compute/resource_tracker.py", line 976, in _update_available_resource
    instances = objects.InstanceList.get_by_host_and_node(
  File "{PY}/oslo_versionedobjects/base.py", line 177, in wrapper
    result = cls.indirection_api.object_class_action_versions(
  File "{PY}/nova/conductor/rpcapi.py", line 240, in object_class_action_versions
    return cctxt.call(context, 'object_class_action_versions',
  File "{PY}/oslo_messaging/rpc/client.py", line 190, in call
    result = self.transport._send(
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 681, in _send
    raise result
oslo_messaging.rpc.client.RemoteError: Remote error: TimeoutError {msg}
""", msg=QUEUEPOOL)


_SPAWN_HEAD = """
Traceback (most recent call last):
  File "{PY}/nova/compute/manager.py", line 2743, in _build_resources
    yield resources
  File "{PY}/nova/compute/manager.py", line 2503, in _build_and_run_instance
    self.driver.spawn(context, instance, image_meta,
"""


def spawn_libvirt_error(message: str) -> tuple[str, ...]:
    return _tb(_SPAWN_HEAD, """
  File "{PY}/nova/virt/libvirt/driver.py", line 4420, in spawn
    self._create_guest_with_network(
  File "{PY}/nova/virt/libvirt/driver.py", line 7602, in _create_guest_with_network
    self._cleanup_failed_start(
  File "{PY}/oslo_utils/excutils.py", line 227, in __exit__
    self.force_reraise()
  File "{PY}/oslo_utils/excutils.py", line 200, in force_reraise
    raise self.value
  File "{PY}/nova/virt/libvirt/driver.py", line 7577, in _create_guest_with_network
    guest = self._create_guest(
  File "{PY}/nova/virt/libvirt/driver.py", line 7517, in _create_guest
    guest.launch(pause=pause)
  File "{PY}/nova/virt/libvirt/guest.py", line 165, in launch
    with excutils.save_and_reraise_exception():
  File "{PY}/oslo_utils/excutils.py", line 227, in __exit__
    self.force_reraise()
  File "{PY}/oslo_utils/excutils.py", line 200, in force_reraise
    raise self.value
  File "{PY}/nova/virt/libvirt/guest.py", line 163, in launch
    return self._domain.createWithFlags(flags)
  File "{PY}/eventlet/tpool.py", line 193, in doit
    result = proxy_call(self._autowrap, f, *args, **kwargs)
  File "{PY}/eventlet/tpool.py", line 151, in proxy_call
    rv = execute(f, *args, **kwargs)
  File "{PY}/eventlet/tpool.py", line 132, in execute
    six.reraise(c, e, tb)
  File "{PY}/six.py", line 719, in reraise
    raise value
  File "{PY}/eventlet/tpool.py", line 86, in tworker
    rv = meth(*args, **kwargs)
  File "/usr/lib/python3/dist-packages/libvirt.py", line 1409, in createWithFlags
    raise libvirtError('virDomainCreateWithFlags() failed')
libvirt.libvirtError: {message}
""", message=message)


def spawn_enospc(part: str) -> tuple[str, ...]:
    return _tb(_SPAWN_HEAD, """
  File "{PY}/nova/virt/libvirt/driver.py", line 4370, in spawn
    created_instance_dir, created_disks = self._create_image(
  File "{PY}/nova/virt/libvirt/driver.py", line 4764, in _create_image
    created_disks = self._create_and_inject_local_root(
  File "{PY}/nova/virt/libvirt/driver.py", line 4876, in _create_and_inject_local_root
    self._try_fetch_image_cache(backend, fetch_func, context,
  File "{PY}/nova/virt/libvirt/driver.py", line 11187, in _try_fetch_image_cache
    image.cache(fetch_func=fetch_func,
  File "{PY}/nova/virt/libvirt/imagebackend.py", line 281, in cache
    self.create_image(fetch_func_sync, base, size,
  File "{PY}/nova/virt/libvirt/imagebackend.py", line 638, in create_image
    prepare_template(target=base, *args, **kwargs)
  File "{PY}/oslo_concurrency/lockutils.py", line 414, in inner
    return f(*args, **kwargs)
  File "{PY}/nova/virt/libvirt/imagebackend.py", line 277, in fetch_func_sync
    fetch_func(target=target, *args, **kwargs)
  File "{PY}/nova/virt/libvirt/utils.py", line 538, in fetch_image
    images.fetch_to_raw(context, image_id, target, trusted_certs)
  File "{PY}/nova/virt/images.py", line 312, in fetch_to_raw
    fetch(context, image_href, path_tmp, trusted_certs)
  File "{PY}/nova/virt/images.py", line 302, in fetch
    IMAGE_API.download(context, image_href, dest_path=path,
  File "{PY}/nova/image/glance.py", line 1315, in download
    return session.download(context, image_id, data=data,
  File "{PY}/nova/image/glance.py", line 386, in download
    data.write(chunk)
OSError: [Errno 28] No space left on device
""")


def spawn_vif_timeout() -> tuple[str, ...]:
    return _tb(_SPAWN_HEAD, """
  File "{PY}/nova/virt/libvirt/driver.py", line 4420, in spawn
    self._create_guest_with_network(
  File "{PY}/nova/virt/libvirt/driver.py", line 7595, in _create_guest_with_network
    raise exception.VirtualInterfaceCreateException()
nova.exception.VirtualInterfaceCreateException: Virtual Interface creation failed
""")


def no_valid_host() -> tuple[str, ...]:
    """The conductor re-raises the scheduler's NoValidHost; the remote traceback follows the local one.

    The placement path raises ``NoValidHost(reason="")``, so the message really ends in "found. " (trailing space).
    """
    return _tb("""
Traceback (most recent call last):
  File "{PY}/nova/conductor/manager.py", line 1654, in schedule_and_build_instances
    host_lists = self._schedule_instances(context, request_specs[0],
  File "{PY}/nova/conductor/manager.py", line 942, in _schedule_instances
    host_lists = self.query_client.select_destinations(
  File "{PY}/nova/scheduler/client/query.py", line 41, in select_destinations
    return self.scheduler_rpcapi.select_destinations(context, spec_obj,
  File "{PY}/nova/scheduler/rpcapi.py", line 160, in select_destinations
    return cctxt.call(ctxt, 'select_destinations', **msg_args)
""", _RPC_CALL, """
  File "{PY}/oslo_messaging/_drivers/amqpdriver.py", line 681, in _send
    raise result
nova.exception_Remote.NoValidHost_Remote: No valid host was found. {blank}
Traceback (most recent call last):

  File "{PY}/oslo_messaging/rpc/server.py", line 241, in inner
    return func(*args, **kwargs)

  File "{PY}/nova/scheduler/manager.py", line 209, in select_destinations
    raise exception.NoValidHost(reason="")

nova.exception.NoValidHost: No valid host was found. {blank}
""", blank="")


def ovsdb_timeout(obj: str) -> tuple[str, ...]:
    return _tb("""
Traceback (most recent call last):
  File "{PY}/neutron/plugins/ml2/drivers/openvswitch/agent/ovs_neutron_agent.py", line 2784, in rpc_loop
    port_info = self.process_port_info(
  File "{PY}/neutron/plugins/ml2/drivers/openvswitch/agent/ovs_neutron_agent.py", line 2527, in process_port_info
    port_info = self.scan_ports(reg_ports, sync,
  File "{PY}/neutron/agent/common/ovs_lib.py", line 647, in get_vif_port_set
    port_names = self.get_port_name_list()
  File "{PY}/ovsdbapp/backend/ovs_idl/command.py", line 44, in execute
    with self.api.transaction(check_error, log_errors, **kwargs) as t:
  File "{PY}/ovsdbapp/backend/ovs_idl/transaction.py", line 54, in commit
    raise exceptions.TimeoutException(commands=self.commands,
ovsdbapp.exceptions.TimeoutException: Commands [<{cmd} object at {obj}>] exceeded timeout 10 seconds
""", cmd="ovsdbapp.schema.open_vswitch.commands.ListPortsCommand", obj=obj)


def cinder_target(volume: str) -> tuple[str, ...]:
    return _tb("""
Traceback (most recent call last):
  File "{PY}/cinder/volume/manager.py", line 4750, in _connection_create
    model_update = self.driver.create_export(ctxt.elevated(),
  File "{PY}/cinder/volume/drivers/lvm.py", line 845, in create_export
    volume_path = "/dev/%s/%s" % (self.configuration.volume_group,
  File "{PY}/cinder/volume/targets/iscsi.py", line 212, in create_export
    tid = self.create_iscsi_target(iscsi_name,
  File "{PY}/cinder/volume/targets/tgt.py", line 165, in create_iscsi_target
    raise exception.ISCSITargetCreateFailed(volume_id=vol_id)
cinder.exception.ISCSITargetCreateFailed: Failed to create iscsi target for volume volume-{volume}.
""", volume=volume)


def attach_failed(message: str, req: str) -> tuple[str, ...]:
    """nova-compute's attachment_update call getting cinder-api's 500 back through cinderclient."""
    return _tb("""
Traceback (most recent call last):
  File "{PY}/nova/compute/manager.py", line 7415, in _attach_volume
    bdm.attach(context, instance, self.volume_api, self.driver,
  File "{PY}/nova/virt/block_device.py", line 46, in wrapped
    ret_val = method(obj, context, *args, **kwargs)
  File "{PY}/nova/virt/block_device.py", line 672, in attach
    self._do_attach(context, instance, volume, volume_api,
  File "{PY}/nova/virt/block_device.py", line 617, in _do_attach
    connector, volume_api.attachment_update(
  File "{PY}/nova/volume/cinder.py", line 400, in wrapper
    res = method(self, ctx, *args, **kwargs)
  File "{PY}/nova/volume/cinder.py", line 897, in attachment_update
    attachment_ref = cinderclient(
  File "{PY}/cinderclient/v3/attachments.py", line 75, in update
    resp = self._update('/attachments/%s' % id, body)
  File "{PY}/cinderclient/base.py", line 348, in _update
    resp, body = self.api.client.put(url, body=body, **kwargs)
  File "{PY}/cinderclient/client.py", line 211, in request
    raise exceptions.from_response(resp, body)
cinderclient.exceptions.ClientException: {message} (HTTP 500) (Request-ID: {req})
""", message=message, req=req)


def image_download(image: str) -> tuple[str, ...]:
    return _tb(_SPAWN_HEAD, """
  File "{PY}/nova/virt/libvirt/driver.py", line 4370, in spawn
    created_instance_dir, created_disks = self._create_image(
  File "{PY}/nova/virt/libvirt/imagebackend.py", line 277, in fetch_func_sync
    fetch_func(target=target, *args, **kwargs)
  File "{PY}/nova/virt/images.py", line 302, in fetch
    IMAGE_API.download(context, image_href, dest_path=path,
  File "{PY}/nova/image/glance.py", line 1315, in download
    return session.download(context, image_id, data=data,
  File "{PY}/nova/image/glance.py", line 373, in download
    _reraise_translated_image_exception(image_id)
  File "{PY}/nova/image/glance.py", line 1049, in _reraise_translated_image_exception
    raise new_exc.with_traceback(exc_trace)
nova.exception.ImageNotFound: Image {image} could not be found.
""", image=image)
