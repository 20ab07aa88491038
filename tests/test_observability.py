"""Observability of a real `bentoml serve`: the pipeline's stage spans reach a real OTLP/gRPC collector under the
request's span (BentoML's tracing configuration, OpenTelemetry's exporter), logs are one JSON object per line
with RCA_LOG_FORMAT=json, refused requests are counted by status, and rca_model_info has no pid label."""

from __future__ import annotations

import json
import time

import pytest

from openstack_rca.warmup import incident_text

from .test_resilience import TOKEN, _log, _serve, _stop, raw_call
from .test_service import BENTOML

pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
STAGES = {"rca.parse", "rca.score", "rca.retrieve", "rca.diagnose", "rca.narrate"}


@pytest.fixture(scope="module")
def traced(trained, tmp_path_factory):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    from .otlp_collector import Collector

    col = Collector().start()
    cfg, _ = trained
    srv = _serve(cfg.home, tmp_path_factory.mktemp("otel"), {
        "RCA_OTLP_ENDPOINT": f"http://127.0.0.1:{col.port}", "OTEL_BSP_SCHEDULE_DELAY": "200",
        "RCA_LOG_FORMAT": "json", "RCA_SERVE_MAX_ANALYZE_LINES": "5000"})
    yield srv, col
    _stop(srv)
    srv["log"].close()
    col.stop()


def _wait_for(col, pred, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = pred(col.snapshot())
        if got:
            return got
        time.sleep(0.2)
    return pred(col.snapshot())


def test_each_stage_is_a_span_under_the_request(traced):
    srv, col = traced
    body = {"issue": "instances fail to boot on compute-2", "logs": incident_text(1500), "mode": "hybrid",
            "narrate": True}
    status, headers, rep = raw_call(srv["base"], "/analyze", json.dumps(body).encode())
    assert status == 200, rep

    def request_trace(spans):
        stage = {s["trace_id"] for s in spans if s["name"] in STAGES}
        for tid in stage:
            names = {s["name"] for s in spans if s["trace_id"] == tid}
            if STAGES <= names:
                return tid
        return None

    tid = _wait_for(col, request_trace)
    assert tid, sorted({s["name"] for s in col.snapshot()})
    spans = [s for s in col.snapshot() if s["trace_id"] == tid]
    by_id = {s["span_id"]: s for s in spans}
    roots = [s for s in spans if not s["parent_id"] or s["parent_id"] not in by_id]
    assert any(s["service"] == "openstack-rca" and "analyze" in s["name"] for s in roots), roots
    for s in spans:
        if s["name"] in STAGES:  # each stage hangs off the request's server span, in the entry service
            assert s["parent_id"] in by_id and s["service"] == "openstack-rca", s
    parse = next(s for s in spans if s["name"] == "rca.parse")
    assert parse["attributes"]["rca.records"] == rep["source"]["records"]
    # the scorer's own server span joins the same trace: context crosses the entry -> scorer call
    assert any(s["service"] == "rca-scorer" for s in spans), {s["service"] for s in spans}


def test_logs_are_json_lines_with_the_request_id(traced):
    srv, _ = traced
    rid = "obs-test-0001"
    status, _, out = raw_call(srv["base"], "/analyze", json.dumps({"issue": "x", "corpus": "no-such"}).encode(),
                              headers={"X-Request-ID": rid})
    assert status == 404 and out["request_id"] == rid
    time.sleep(0.5)
    records = []
    for line in _log(srv).splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
    assert records and all({"time", "level", "logger", "message"} <= set(r) for r in records)
    assert any(r.get("request_id") == rid for r in records), [r for r in records if "request_id" in r][-5:]


def test_refusals_are_counted_by_status_and_the_model_gauge_has_no_pid(traced):
    srv, _ = traced
    assert raw_call(srv["base"], "/score", b'{"lines": ["a"]}', token="wrong")[0] == 401
    assert raw_call(srv["base"], "/score", b"[" * 100 + b"]" * 100)[0] == 422
    status, _, text = raw_call(srv["base"], "/metrics", None, token=None, method="GET")
    assert status == 200
    counts = {}
    for line in text.splitlines():
        if line.startswith("rca_rejected_requests_total{"):
            counts[line.split('status="')[1].split('"')[0]] = float(line.rsplit(" ", 1)[1])
    assert counts.get("401", 0) >= 1 and counts.get("422", 0) >= 1, counts
    info = [ln for ln in text.splitlines() if ln.startswith("rca_model_info{")]
    assert info and all("pid=" not in ln for ln in info), info
    assert TOKEN not in text


def test_tracing_config_from_the_environment():
    from bentos.observability import tracing_config

    assert tracing_config({}) == {}
    t = tracing_config({"OTEL_EXPORTER_OTLP_ENDPOINT": "https://collector:4317"})
    assert t["sample_rate"] == 1.0 and t["otlp"]["grpc"] == {"insecure": False}
    for bad in ("2", "-0.1", "often"):
        with pytest.raises(SystemExit, match="RCA_TRACE_SAMPLE_RATE"):
            tracing_config({"RCA_OTLP_ENDPOINT": "http://c:4317", "RCA_TRACE_SAMPLE_RATE": bad})


def test_json_log_lines_and_stage_timings():
    import logging

    from openstack_rca import telemetry

    rec = logging.LogRecord("openstack_rca.serve", logging.WARNING, __file__, 1, "corpus %r busy", ("x",), None)
    rec.request_id = "abc"
    out = json.loads(telemetry.JSONFormatter().format(rec))
    assert out["message"] == "corpus 'x' busy" and out["level"] == "WARNING" and out["request_id"] == "abc"
    assert out["time"].endswith("Z") and "trace_id" not in out  # no span is current
    with pytest.raises(SystemExit, match="RCA_LOG_FORMAT"):
        telemetry.log_format({"RCA_LOG_FORMAT": "xml"})
    timings: dict = {}
    with telemetry.stage("parse", timings, records=3):
        time.sleep(0.01)
    assert timings["parse"] >= 10
