"""Every layout an operator has, parsed to the same fields."""

from __future__ import annotations

import pytest

from openstack_rca.parse import Parser, iter_records

from .helpers import GREQ, INST, PROJ, REQ, USER, assert_accounted, write

OSLO = f"2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [{REQ} {USER} {PROJ} - - -] [instance: {INST}] Claim successful on node compute-1"


def parse(cfg, *paths):
    res = Parser(cfg, use_cache=False).parse(paths)
    assert_accounted(res)
    return res, list(iter_records(res.table))


def test_oslo_default(cfg, tmp_path):
    res, [r] = parse(cfg, write(tmp_path / "nova-compute.log", OSLO + "\n"))
    assert r.layout == "oslo" and r.parsed
    assert r.timestamp == "2026-11-23T10:00:00.123"
    assert (r.pid, r.level, r.component, r.service) == (4242, "INFO", "nova.compute.manager", "nova-compute")
    assert (r.request_id, r.global_request_id, r.user_id, r.project_id) == (REQ, None, USER, PROJ)
    assert r.instance_id == INST
    assert r.message == f"[instance: {INST}] Claim successful on node compute-1"
    assert r.template == "[instance: <*>] Claim successful on node <*>"
    assert r.params == [INST, "compute-1"]
    assert (r.line_no, r.line_end, r.raw) == (1, 1, OSLO)


def test_oslo_with_global_request_id_and_pike_context(cfg, tmp_path):
    lines = [
        f"2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [{GREQ} {REQ} {USER} {PROJ} - default default] Took 1.2 seconds",
        f"2026-11-23 10:00:01.123 4242 INFO nova.compute.manager [None {REQ} {USER} {PROJ} - default default] Took 1.3 seconds",
        "2026-11-23 10:00:02.123 4242 INFO nova.compute.manager [-] Running periodic task",
        f"2026-11-23 10:00:03.123 4242 INFO nova.compute.manager [None {REQ} - - - - - -] Auditing",
    ]
    _, recs = parse(cfg, write(tmp_path / "nova-compute.log", "\n".join(lines) + "\n"))
    assert [(r.request_id, r.global_request_id, r.user_id, r.project_id) for r in recs] == [
        (REQ, GREQ, USER, PROJ), (REQ, None, USER, PROJ), (None, None, None, None), (REQ, None, None, None),
    ]
    assert recs[0].template_id == recs[1].template_id  # same event, different numbers


def test_loghub_prefixed_lines_take_service_from_the_prefix(cfg, tmp_path):
    line = "nova-api.log.1.2017-05-16_13:53:08 " + OSLO.replace("nova.compute.manager", "nova.osapi_compute.wsgi.server")
    _, [r] = parse(cfg, write(tmp_path / "mixed.log", line + "\n"))
    assert r.layout == "oslo_prefixed" and r.service == "nova-api"
    assert r.timestamp == "2026-11-23T10:00:00.123"


def test_devstack_journald(cfg, tmp_path):
    line = f"Nov 23 10:00:01 compute-1 devstack@n-cpu.service[1234]: INFO nova.compute.manager [None {REQ} admin admin] [instance: {INST}] VM Started (Lifecycle Event)"
    cfg2 = cfg.replace(parse=type(cfg.parse)(journal_year=2026))
    _, [r] = parse(cfg2, write(tmp_path / "journal" / "devstack.log", line + "\n"))
    assert r.layout == "journald"
    assert r.timestamp == "2026-11-23T10:00:01"
    assert (r.service, r.pid, r.request_id, r.user_id, r.project_id) == ("nova-compute", 1234, REQ, "admin", "admin")
    assert r.instance_id == INST


def test_message_only_lines_have_no_timestamp(cfg, tmp_path):
    line = f"INFO nova.compute.manager [{REQ}] [instance: {INST}] Terminating instance"
    _, [r] = parse(cfg, write(tmp_path / "nova-compute.log", line + "\n"))
    assert r.layout == "message_only" and r.timestamp is None and r.pid is None
    assert (r.level, r.request_id, r.instance_id) == ("INFO", REQ, INST)


def test_cri_wrapped_lines_and_partial_lines(cfg, tmp_path):
    inner = OSLO
    p1, p2 = inner[:60], inner[60:]
    text = "\n".join([
        f"2026-11-23T10:00:00.123456789Z stdout F {inner}",
        f"2026-11-23T10:00:01.000000000Z stderr P {p1}",
        f"2026-11-23T10:00:01.000000001Z stderr F {p2}",
        "2026-11-23T10:00:02.000000000Z stdout F INFO nova.compute.manager [-] no timestamp inside",
    ]) + "\n"
    path = write(tmp_path / "pods" / "openstack_nova-compute-0_1a2b" / "nova-compute" / "0.log", text)
    res, recs = parse(cfg, path)
    assert len(recs) == 3
    assert all(r.service == "nova-compute" for r in recs)
    assert recs[0].layout == "oslo" and recs[0].timestamp == "2026-11-23T10:00:00.123"
    assert (recs[1].line_no, recs[1].line_end) == (2, 3) and recs[1].message == recs[0].message
    assert recs[1].raw.count("\n") == 1  # both raw lines kept
    assert recs[2].timestamp == "2026-11-23T10:00:02.000000000Z"  # the runtime's stamp when the line has none


def test_oslo_traceback_with_repeated_headers_is_one_record(cfg, tmp_path):
    h = "2026-11-23 10:00:05.001 4242 ERROR nova.compute.manager"
    lines = [
        f"{h} [{REQ} {USER} {PROJ} - - -] [instance: {INST}] Instance failed to spawn: libvirt.libvirtError: internal error: qemu unexpectedly closed the monitor",
        f"{h} [instance: {INST}] Traceback (most recent call last):",
        f'{h} [instance: {INST}]   File "/usr/lib/python3/dist-packages/nova/compute/manager.py", line 2615, in _build_resources',
        f"{h} [instance: {INST}]     yield resources",
        f"{h} [instance: {INST}] libvirt.libvirtError: internal error: qemu unexpectedly closed the monitor",
        "2026-11-23 10:00:05.002 4242 INFO nova.compute.manager [-] next record",
    ]
    _, recs = parse(cfg, write(tmp_path / "nova-compute.log", "\n".join(lines) + "\n"))
    assert len(recs) == 2
    tb = recs[0]
    assert (tb.line_no, tb.line_end, tb.level) == (1, 5, "ERROR")
    assert tb.raw.split("\n") == lines[:5]
    assert tb.exception == "libvirt.libvirtError: internal error: qemu unexpectedly closed the monitor"
    assert tb.template == "[instance: <*>] Instance failed to spawn: libvirt.libvirtError: internal error: qemu unexpectedly closed the monitor"
    assert recs[1].line_no == 6


def test_headerless_continuation_lines_join_the_record_before(cfg, tmp_path):
    lines = [
        "2026-11-23 10:00:05.001 4242 ERROR oslo_messaging.rpc.server [-] Exception during message handling",
        "Traceback (most recent call last):",
        '  File "/usr/lib/python3/dist-packages/oslo_messaging/rpc/server.py", line 165, in _process_incoming',
        "    res = self.dispatcher.dispatch(message)",
        "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message ID 5f2b",
        "2026-11-23 10:00:06.001 4242 INFO nova.compute.manager [-] after",
    ]
    _, recs = parse(cfg, write(tmp_path / "nova-conductor.log", "\n".join(lines) + "\n"))
    assert [(r.line_no, r.line_end) for r in recs] == [(1, 5), (6, 6)]
    assert recs[0].exception.startswith("oslo_messaging.exceptions.MessagingTimeout")
    assert recs[0].service == "nova-conductor"


def test_multi_line_messages_and_a_traceback_after_them_are_one_record(cfg, tmp_path):
    """oslo writes a multi-line message as is: HTTP headers, JSON bodies, taskflow's state dumps. Its lines have
    no header and belong to the record before; a traceback printed by the same call (oslo prefixes it with ERROR
    even under a WARNING) joins that record too, and its exception is the line after the frames."""
    h = "2026-11-23 10:00:02.027 31344"
    lines = [
        f"2026-11-23 10:00:01.000 31344 DEBUG cinder.api.openstack.wsgi [{REQ} - - - - -] RESP:",
        "HTTP/1.1 200 OK",
        "Content-Type: application/json",
        "",
        '{"volume": {"status": "error"}}',
        f"{h} WARNING cinder.scheduler.manager [{REQ} - - - - -] Task 'ScheduleCreateVolumeTask' transitioned "
        "into state 'FAILURE' from state 'RUNNING'",
        "2 predecessors (most recent first):",
        "  |__Flow 'volume_create_scheduler': TypeError: consume_from_volume() takes exactly 2 arguments (1 given)",
        f"{h} ERROR cinder.scheduler.manager Traceback (most recent call last):",
        f'{h} ERROR cinder.scheduler.manager   File "/usr/lib/python2.7/site-packages/cinder/scheduler/'
        'filter_scheduler.py", line 304, in _choose_top_backend',
        f"{h} ERROR cinder.scheduler.manager     backend_state.consume_from_volume()",
        f"{h} ERROR cinder.scheduler.manager ProcessExecutionError: Unexpected error while running command.",
        f"{h} ERROR cinder.scheduler.manager Command: lvchange -a y",
        f"{h} ERROR cinder.scheduler.manager ",
        "2026-11-23 10:00:03.000 31344 INFO cinder.scheduler.manager [-] after",
    ]
    _, recs = parse(cfg, write(tmp_path / "cinder" / "scheduler.log", "\n".join(lines) + "\n"))
    assert [(r.line_no, r.line_end) for r in recs] == [(1, 5), (6, 14), (15, 15)]
    assert all(r.parsed for r in recs)
    assert recs[1].level == "WARNING" and recs[1].service == "cinder-scheduler"
    assert recs[1].exception == "ProcessExecutionError: Unexpected error while running command."
    assert "filter_scheduler.py" in recs[1].raw


@pytest.mark.parametrize(
    "name, line, expect",
    [
        ("rabbitmq/rabbit@controller.log",
         "2026-11-23 10:00:00.123456+00:00 [error] <0.1234.0> closing AMQP connection <0.1234.0> (192.168.10.21:41234 -> 192.168.10.11:5672)",
         ("rabbitmq", "ERROR", "2026-11-23T10:00:00.123456+00:00")),
        ("mysql/error.log",
         "2026-11-23 10:00:00 123 [Warning] Aborted connection 123 to db: 'nova' user: 'nova' host: '192.168.10.21' (Got timeout reading communication packets)",
         ("mysql", "WARNING", "2026-11-23T10:00:00")),
        ("libvirt/libvirtd.log",
         "2026-11-23 10:00:00.123+0000: 12345: error : qemuMonitorIO:620 : internal error: End of file from qemu monitor",
         ("libvirtd", "ERROR", "2026-11-23T10:00:00.123+00:00")),
    ],
)
def test_infrastructure_logs(cfg, tmp_path, name, line, expect):
    _, [r] = parse(cfg, write(tmp_path / name, line + "\n"))
    assert (r.service, r.level, r.timestamp) == expect
    assert r.parsed


def test_layout_is_detected_per_file(cfg, tmp_path):
    a = write(tmp_path / "a" / "nova-compute.log", OSLO + "\n")
    b = write(tmp_path / "b" / "rabbit@ctl.log", "2026-11-23 10:00:00.1+00:00 [info] <0.1.0> accepting AMQP connection\n")
    res, recs = parse(cfg, tmp_path)
    assert {r.layout for r in recs} == {"oslo", "rabbitmq"}
    assert [f.path for f in res.files] == [str(a), str(b)]
