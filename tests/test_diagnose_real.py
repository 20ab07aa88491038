"""The pieces that make diagnosis hold on real logs: where in the code, request operations, housekeeping, one
clock for timed and untimed files, the issue's operation/host/status, and the engine on small hand-written
multi-service logs (no model needed beyond an empty one)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from openstack_rca.diagnose import chains, clock, code, housekeeping
from openstack_rca.diagnose.issue import ACTION, STATUS, parse_issue
from openstack_rca.diagnose.lexical import Matcher, words
from openstack_rca.parse.timestamps import to_epoch

TB = """2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager Traceback (most recent call last):
2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager   File "/usr/lib/python2.7/site-packages/taskflow/engines/action_engine/executor.py", line 53, in _execute_task
2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager     result = task.execute(**arguments)
2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager   File "/usr/lib/python2.7/site-packages/cinder/scheduler/filter_scheduler.py", line 304, in _choose_top_backend
2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager     backend_state.consume_from_volume()
2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager   File "/usr/lib/python2.7/site-packages/oslo_utils/excutils.py", line 196, in force_reraise
2018-09-29 05:07:49.027 31344 ERROR cinder.scheduler.manager TypeError: consume_from_volume() takes exactly 2 arguments (1 given)"""


def test_where_in_the_code_is_the_deepest_service_frame():
    loc = code.locate("header\n" + TB, "Task transitioned into state 'FAILURE'", "cinder.scheduler.manager",
                      "TypeError: consume_from_volume() takes exactly 2 arguments (1 given)")
    assert (loc.module, loc.function, loc.line, loc.exception, loc.source) == (
        "cinder/scheduler/filter_scheduler.py", "_choose_top_backend", 304, "TypeError", "traceback")
    # a RemoteError carries the remote side's traceback as a Python list repr
    remote = ("Remote error: ProcessExecutionError\n[u'Traceback (most recent call last):\\n', u'  File "
              "\"/usr/lib/python2.7/site-packages/cinder/volume/drivers/lvm.py\", line 461, in create_export\\n']")
    assert code.locate(remote, "Caught error", "cinder.api.middleware.fault", None).module == \
        "cinder/volume/drivers/lvm.py"


def test_where_in_the_code_without_a_traceback():
    msg = "Choosing localhost@lvm#lvm _choose_top_backend /usr/lib/python2.7/site-packages/cinder/scheduler/filter_scheduler.py:300"
    loc = code.locate(msg, msg, "cinder.scheduler.filter_scheduler", None)
    assert (loc.module, loc.function, loc.line, loc.source) == (
        "cinder/scheduler/filter_scheduler.py", "_choose_top_backend", 300, "debug-suffix")
    loc = code.locate("x", "Instance failed", "nova.compute.manager", None)
    assert (loc.module, loc.source) == ("nova/compute/manager.py", "logger")
    assert code.locate("x", "y", "oslo_messaging.rpc.server", None) is None  # a library logger names no module
    assert code.modules_named("h\n" + TB, "m", "cinder.scheduler.manager") >= {
        "cinder/scheduler/filter_scheduler.py", "cinder/scheduler/manager.py", "oslo_utils/excutils.py"}


@pytest.mark.parametrize("line, op", [
    ('10.0.0.1 "POST /v2.1/05fdb340f00d43e3806dd80169385bcc/servers HTTP/1.1" status: 202 len: 1 time: 0.1',
     "create server instance api http 202"),
    ('10.0.0.1 "DELETE /v2.0/networks/2ce34dd7-df32-4a77-980f-3c1215fa4847 HTTP/1.1" status: 500 len: 1',
     "delete network api http 500"),
    ('"POST /v2.1/p/servers/2ce34dd7-df32-4a77-980f-3c1215fa4847/os-volume_attachments HTTP/1.1" status: 409',
     "attach volume attachment api http 409"),
    ('"GET /v3/p/volumes/detail?all_tenants=1 HTTP/1.1" status: 400', "get list show volume api http 400"),
    ("POST http://10.0.0.1:8776/v3/05fdb340f00d43e3806dd80169385bcc/volumes", "create volume api http"),
    ("http://10.0.0.1:8776/v3/05fdb340f00d43e3806dd80169385bcc/volumes returned with HTTP 500", "volume api http 500"),
    ('10.0.0.1 - - [29/Jun/2018 02:07:37] "POST /v2/images HTTP/1.1" 201 867 0.479406', "create image api http 201"),
    ('"POST /v2.1/os-server-external-events HTTP/1.1" status: 200', "server external events api http 200"),
    ("Took 3.2 seconds to build instance.", None),
])
def test_the_operation_of_an_api_access_line(line, op):
    assert chains.operation(line) == op


@pytest.mark.parametrize("message, logger, expect", [
    ('Option "dhcp_domain" from group "DEFAULT" is deprecated for removal (', "oslo_config.cfg", True),
    ("Using the in-process token cache is deprecated as of the 4.2.0 release", "keystonemiddleware.auth_token", True),
    ("Deprecated: Quota predefinita per la risorsa: volumes_iscsi è ora obsoleta.", "cinder.quota", True),
    ("Unknown base file: /var/lib/nova/instances/_base/a1b2", "nova.virt.libvirt.imagecache", True),
    ("Running periodic task ComputeManager._poll_rebooting_instances", "oslo_service.periodic_task", True),
    ("Instance failed to spawn: libvirtError: internal error", "nova.compute.manager", False),
    ("AMQP server on 10.0.0.1:5672 is unreachable", "oslo.messaging._drivers.impl_rabbit", False),
])
def test_housekeeping_is_named_by_what_it_says(message, logger, expect):
    assert housekeeping.is_housekeeping(message, logger) is expect


def test_trouble_words_lift_info_lines_but_not_debug():
    sev = housekeeping.adjust(np.array([0.05, 0.2, 0.2, 0.6]), np.array([False, False, False, True]),
                              np.array([True, True, False, False]))
    assert list(sev) == [0.05, housekeeping.TROUBLE_SEVERITY, 0.2, housekeeping.TRACEBACK_SEVERITY]


def _table(rows: list[tuple]) -> pa.Table:
    src, line, ts = zip(*rows)
    return pa.table({"source": list(src), "line_no": list(line), "timestamp": list(ts)})


def test_one_clock_for_timed_untimed_and_backwards_files():
    t = _table([("a.log", 1, "2026-11-23T10:00:00"), ("a.log", 2, None), ("a.log", 3, "2026-11-23T10:00:10"),
                ("b.log", 1, "2026-11-23T10:00:20"), ("b.log", 2, "2026-11-23T09:00:00"),  # clock stepped back
                ("c.log", 1, None), ("c.log", 2, None), ("c.log", 3, None)])
    clk = clock.build(t, to_epoch(t["timestamp"]))
    o = clk.order
    assert np.isfinite(o).all() and o[1] == o[0]  # a remnant takes its neighbour's time
    assert o[4] >= o[3]  # a file's own order stands
    assert o[5] < o[6] < o[7] and o[5] == o[0] and o[7] == max(o[:5])  # untimed: spread over the timed span
    assert clk.untimed_files == 1 and "line order" in clk.note and list(clk.timed[5:]) == [False] * 3
    only = clock.build(t.slice(5), to_epoch(t.slice(5)["timestamp"]))
    assert only.line_order_only and list(only.order) == [0.0, 1.0, 2.0]


def test_the_issue_names_operations_objects_status_and_host():
    i = parse_issue("openstack server add volume fails with an API error (HTTP 409); the new instance never "
                    "becomes ACTIVE on compute-2 since 14:05")
    words_ = {w for c in i.concepts for w in c}
    assert {"attach", "create", "instance", "volume", "409"} <= words_
    assert ACTION in i.kinds and STATUS in i.kinds and i.hosts == ("compute-2",) and i.clock == (14, 5, 0)
    assert "14" not in words_ and "05" not in words_  # the time is not a status code
    assert parse_issue("cinder list fails").has_action and not parse_issue("database timeout errors").has_action


def test_another_operation_is_another_incident():
    issue = parse_issue("the new instance never becomes ACTIVE")
    create = words("Exception during message handling schedule_and_build_instances create server instance")
    delete = words("Setting instance vm_state to ERROR _complete_deletion delete server instance")
    m = Matcher(issue, [create, delete])
    assert m.score(create) > 0.9 and m.score(delete) < 0.3


# -- the engine on small multi-service logs ------------------------------------------------------------------------
REQ_BOOT = "req-11111111-2222-3333-4444-555555555555"
REQ_DEL = "req-66666666-7777-8888-9999-000000000000"
INST = "6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f"
CTX = "ab12cd34ef56ab12cd34ef56ab12cd34 0f1e2d3c4b5a69788796a5b4c3d2e1f0 - default default"


def _logs(tmp_path, *, boot_fails: bool):
    api = [
        f"2026-11-23 10:00:00.000 100 WARNING keystonemiddleware.auth_token [-] Using the in-process token cache is "
        "deprecated as of the 4.2.0 release and may be removed in the 5.0.0 release.",
        f"2026-11-23 10:00:01.000 100 WARNING oslo_config.cfg [-] Option \"dhcp_domain\" from group \"DEFAULT\" is "
        "deprecated for removal.",
        f"2026-11-23 10:05:00.000 100 INFO nova.osapi_compute.wsgi.server [{REQ_DEL} {CTX}] 10.0.0.1 \"DELETE "
        f"/v2.1/p/servers/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee HTTP/1.1\" status: 204 len: 0 time: 0.2",
        f"2026-11-23 10:10:00.000 100 INFO nova.osapi_compute.wsgi.server [{REQ_BOOT} {CTX}] 10.0.0.1 \"POST "
        "/v2.1/p/servers HTTP/1.1\" status: 202 len: 1 time: 0.5",
    ]
    compute = [
        f"2026-11-23 10:05:00.500 200 ERROR nova.compute.manager [{REQ_DEL} {CTX}] [instance: "
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee] Setting instance vm_state to ERROR: Exception",
        f"2026-11-23 10:10:01.000 200 INFO nova.compute.claims [{REQ_BOOT} {CTX}] [instance: {INST}] Claim successful",
    ]
    if boot_fails:
        h = f"2026-11-23 10:10:02.000 200 ERROR nova.compute.manager [instance: {INST}]"
        compute += [
            f"2026-11-23 10:10:02.000 200 ERROR nova.compute.manager [{REQ_BOOT} {CTX}] [instance: {INST}] Unexpected "
            "build failure, not rescheduling build.: TypeError: notify_about_instance_create() takes at least 3 "
            "arguments (2 given)",
            f"{h} Traceback (most recent call last):",
            f'{h}   File "/usr/lib/python2.7/site-packages/nova/compute/manager.py", line 1171, in _build_and_run_instance',
            f"{h}     compute_utils.notify_about_instance_create(instance, self.host)",
            f"{h} TypeError: notify_about_instance_create() takes at least 3 arguments (2 given)",
        ]
    else:
        compute.append(f"2026-11-23 10:10:09.000 200 INFO nova.compute.manager [{REQ_BOOT} {CTX}] [instance: {INST}] "
                       "Took 8.1 seconds to build instance.")
    for name, lines in (("nova/nova-api.log", api), ("nova/nova-compute.log", compute)):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("\n".join(lines) + "\n")
    return tmp_path


@pytest.fixture
def blank_analyzer(cfg):
    """An Analyzer whose model knows nothing (an empty vocabulary): the engine must stand without it."""
    from openstack_rca import registry
    from openstack_rca.analyze import Analyzer
    from openstack_rca.score.bundle import ModelBundle
    from openstack_rca.score.deeplog import DeepLogConfig
    from openstack_rca.score.vocabulary import Vocabulary

    class Blank(ModelBundle):
        def score(self, table):
            n = table.num_rows
            return pa.table({"anomaly": np.zeros(n), "rank": np.zeros(n, np.int64), "anomalous": np.zeros(n, bool),
                             "importance": np.zeros(n), "expected": pa.nulls(n, pa.list_(pa.string()))})

    vocab = Vocabulary.build([], {})
    bundle = Blank(None, vocab, np.zeros(len(vocab), np.int64), None, DeepLogConfig())
    return Analyzer(cfg, loaded=registry.LoadedModel(bundle=bundle, name="blank", version="0", alias="champion",
                                                     source="test", loaded_at="2026-11-30T00:00:00Z"))


def test_the_root_cause_is_the_failing_request_not_housekeeping_or_another_operation(blank_analyzer, tmp_path):
    logs = _logs(tmp_path, boot_fails=True)
    rep = blank_analyzer.analyze("new instances never become ACTIVE", paths=[logs], mode="fast", narrate=True)
    rc, e1 = rep["root_cause"], rep["evidence"][0]
    assert rc["confidence"] >= 0.3 and e1["role"] == "root_cause"
    assert "Unexpected build failure" in e1["text"] and e1["service"] == "nova-compute"
    assert rc["quote"].startswith("TypeError: notify_about_instance_create()")
    assert rc["code"]["module"] == "nova/compute/manager.py" and rc["code"]["function"] == "_build_and_run_instance"
    assert any(s["root_cause"] for s in rc["chain"])
    assert rc["chain"][0]["request_id"] == REQ_BOOT
    assert any("never seen in training" in w for w in rep["warnings"])  # the blank model knows none of it
    json.dumps(rep)


def test_no_evidence_when_only_another_operation_failed(blank_analyzer, tmp_path):
    logs = _logs(tmp_path, boot_fails=False)  # only the DELETE failed; the boot went fine
    rep = blank_analyzer.analyze("new instances never become ACTIVE", paths=[logs], mode="fast", narrate=False)
    assert rep["root_cause"]["confidence"] < 0.3 and rep["root_cause"]["summary"].startswith("No evidence found")
    # an issue about the delete finds it
    rep = blank_analyzer.analyze("deleting a server leaves it in ERROR", paths=[logs], mode="fast", narrate=False)
    assert rep["root_cause"]["confidence"] >= 0.3 and "vm_state to ERROR" in rep["evidence"][0]["text"]


def test_housekeeping_alone_is_no_evidence(blank_analyzer, tmp_path):
    logs = _logs(tmp_path, boot_fails=False)
    (logs / "nova" / "nova-compute.log").unlink()
    rep = blank_analyzer.analyze("instances fail to boot", paths=[logs], mode="fast", narrate=False)
    assert rep["root_cause"]["confidence"] < 0.3
