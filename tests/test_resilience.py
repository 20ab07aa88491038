"""Hardening of the service, against a real `bentoml serve`: hostile bodies, limits on every route, one error
shape with a request id, no secrets in answers or logs, fail-fast start-up, and secure by default.

One module-scoped server (small limits, a bearer token, an MLflow tracking server that never answers, with
credentials in its URI) serves most tests; a second, short-lived one starts with no model at all; a third is
refused because it has no token.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from .test_service import BENTOML, ROOT, TOKEN, _free_port, call

SECRET = "PASS-s3cr3t-value"
BODY_LIMIT = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def blackhole():
    """A tracking server that accepts connections and never answers (the slowest way to be down)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield f"http://rca:{SECRET}@127.0.0.1:{s.getsockname()[1]}"
    s.close()


def _serve(home, tmp, env_extra: dict, wait_ready: bool = True, timeout: float = 240, wrap: tuple = ()):
    """``wrap``: a command that execs the server's argv it is given (e.g. `unshare ... sh -c '...exec "$@"'`)."""
    port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "RCA_HOME": str(home), "RCA_API_TOKEN": TOKEN, "RCA_GRPC_PORT": str(grpc_port),
           "RCA_SERVE_MAX_BODY_BYTES": str(BODY_LIMIT), "RCA_SERVE_MAX_SCORE_LINES": "500",
           "RCA_SERVE_MAX_ANALYZE_LINES": "1000", "BENTOML_HOME": str(tmp / "bentoml-home"),
           "HF_HUB_OFFLINE": "1", "RCA_NARRATIVE_MAX_RETRIES": "0", **env_extra}
    for k in ("ANTHROPIC_API_KEY", "RCA_ALLOW_ANONYMOUS"):
        env.pop(k, None)
    env = {k: v for k, v in env.items() if v is not None}
    log = open(tmp / "serve.log", "w+")
    proc = subprocess.Popen([*wrap, str(BENTOML), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    srv = {"base": f"http://127.0.0.1:{port}", "log": log, "proc": proc, "started": time.monotonic()}
    deadline = time.time() + timeout
    while True:
        try:
            code = call(srv["base"], "/readyz" if wait_ready else "/livez", token=None, timeout=2)[0]
            if code == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            _stop(srv)
            pytest.fail(f"bentoml serve did not start:\n{_log(srv)[-4000:]}")
        time.sleep(0.5)
    return srv


def _stop(srv) -> None:
    try:
        os.killpg(srv["proc"].pid, signal.SIGTERM)  # the arbiter stops its workers
        srv["proc"].wait(timeout=30)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        _kill9(srv)


def _kill9(srv) -> None:
    """kill -9 the whole server: BentoML starts each worker in its own session, so killing the process group
    would leave the workers serving (and finishing the request in flight)."""
    import psutil

    try:
        root = psutil.Process(srv["proc"].pid)
        procs = [*root.children(recursive=True), root]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=30)
    srv["proc"].wait(timeout=30)


def _log(srv) -> str:
    srv["log"].flush()
    srv["log"].seek(0)
    return srv["log"].read()


def raw_call(base: str, path: str, data: bytes | None, *, token: str | None = TOKEN, method: str = "POST",
             headers: dict | None = None, timeout: float = 60):
    """-> (status, headers, parsed JSON or text)."""
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=h, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status, hdrs, text = r.status, r.headers, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        status, hdrs, text = e.code, e.headers, e.read().decode(errors="replace")
    try:
        return status, hdrs, json.loads(text)
    except ValueError:
        return status, hdrs, text


@pytest.fixture(scope="module")
def server(trained, blackhole, tmp_path_factory):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    cfg, _ = trained  # its registry load left a local copy: the fallback when MLflow does not answer
    srv = _serve(cfg.home, tmp_path_factory.mktemp("resilience"), {"MLFLOW_TRACKING_URI": blackhole})
    yield srv
    _stop(srv)
    srv["log"].close()


def _assert_error_shape(status, headers, body, code):
    assert status == code, body
    assert isinstance(body, dict) and body["error"] and body["request_id"], body
    assert headers["X-Request-ID"] == body["request_id"]
    assert "Traceback" not in json.dumps(body)


# 5. MLflow unreachable at start: the local copy, within 10 s, logged once per process
def test_mlflow_down_at_start_serves_the_local_copy(server):
    status, info = call(server["base"], "/model")
    assert status == 200 and info["source"] == "local-fallback" and info["version"] == "1", info
    assert info["load_ms"] < 10_000, info
    log = _log(server)
    assert 1 <= log.count("using local copy") <= 2, log[-3000:]  # the entry and the scorer, once each
    assert SECRET not in log and SECRET not in json.dumps(info)


def test_readyz_answers_within_a_second(server):
    t0 = time.monotonic()
    assert call(server["base"], "/readyz", token=None, timeout=5)[0] == 200
    assert time.monotonic() - t0 < 1.0


def test_readyz_answers_within_a_second_while_the_scorer_hangs(server):
    psutil = pytest.importorskip("psutil")
    (scorer,) = [p for p in psutil.Process(server["proc"].pid).children(recursive=True)
                 if "rca-scorer" in " ".join(p.cmdline())]
    scorer.suspend()
    try:
        t0 = time.monotonic()
        assert call(server["base"], "/readyz", token=None, timeout=5)[0] == 503
        assert time.monotonic() - t0 < 1.0
    finally:
        scorer.resume()
    deadline = time.time() + 30
    while call(server["base"], "/readyz", token=None, timeout=5)[0] != 200:
        assert time.time() < deadline
        time.sleep(0.5)


# 1. line limits count newlines inside every field
@pytest.mark.parametrize("path, body", [
    ("/score", {"lines": ["x\n" * 1_000_000]}),
    ("/score", {"lines": ["a\nb\nc"] * 200}),
    ("/analyze", {"issue": "x", "logs": "line\n" * 1001}),
    ("/ingest", {"corpus": "big", "logs": "line\n" * 1001}),
])
def test_line_limits_count_newlines_in_every_field(server, path, body):
    status, headers, out = raw_call(server["base"], path, json.dumps(body).encode())
    _assert_error_shape(status, headers, out, 413)
    assert "limit" in out["error"]


# 2. hostile JSON: refused at once with the project's shape, never a 500 or a trace
@pytest.mark.parametrize("path, raw", [
    ("/analyze", b'{"issue": "x", "logs": ' + b"[" * 1100 + b"]" * 1100 + b"}"),
    ("/score", b"[" * 1100 + b"]" * 1100),
    ("/analyze", b'{"issue": "x", "logs": "a", "top_k": 1' + b"0" * 5000 + b"}"),
    ("/analyze", b'{"issue": "x", "logs": "a", "top_k": 1e' + b"9" * 5000 + b"}"),
    ("/score", b'{"lines": ["\\ud800 lone surrogate"]}'),
    ("/analyze", json.dumps({"issue": "x", "logs": "a"}).encode("utf-16")),
    ("/analyze", b'{"issue": "x", "logs": "\xff\xfe bad bytes"}'),
    ("/model", b"[" * 1100 + b"]" * 1100),
])
def test_hostile_json_is_422_at_once(server, path, raw):
    t0 = time.monotonic()
    status, headers, out = raw_call(server["base"], path, raw, timeout=30)
    assert time.monotonic() - t0 < 5
    _assert_error_shape(status, headers, out, 422)
    assert "Traceback" not in _log(server)


@pytest.mark.parametrize("path", ["/docs.json", "/schema.json", "/docs", "/score/../livez", "/livez/x"])
def test_every_other_route_needs_the_token(server, path):
    status, headers, out = raw_call(server["base"], path, None, token=None, method="GET")
    assert status == 401, out
    assert raw_call(server["base"], path, None, method="GET")[0] != 401


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/metrics"])
def test_probes_stay_open(server, path):
    assert raw_call(server["base"], path, None, token=None, method="GET")[0] == 200


# row 9: one unreadable corpus neither breaks the listing nor hides itself
def test_corpora_lists_the_readable_and_names_the_unreadable(server, trained):
    import shutil

    from openstack_rca import corpus
    from openstack_rca.warmup import incident_text

    cfg, _ = trained
    name = "resilience-unreadable"
    assert raw_call(server["base"], "/ingest", json.dumps({"corpus": name, "logs": incident_text(600), "index": False})
                    .encode())[0] == 200
    vdir = cfg.corpora_dir / name / corpus.stamp(cfg, name)
    try:
        (vdir / "meta.json").write_text("{torn")
        status, _, out = raw_call(server["base"], "/corpora", None, method="GET")
        assert status == 200 and name not in [r["name"] for r in out["corpora"]]
        assert {"name": name, "error": "meta.json is unreadable (JSONDecodeError)"} in out["skipped"]
        assert str(cfg.home) not in json.dumps(out)
    finally:
        shutil.rmtree(cfg.corpora_dir / name, ignore_errors=True)


# row 13: a line written to an AI, planted in a simulated failure's logs, is flagged and never the cause
def test_planted_instructions_are_flagged_through_the_service(server, tmp_path):
    from openstack_rca import simulate

    from .test_untrusted import PLANTED, _planted_line

    truth = simulate.simulate("neutron_vif_failure", tmp_path, lines=3000, seed=3)
    ref = truth["root_cause"][0]  # in nova-compute's log: the planted line takes its header
    lines = (tmp_path / ref["file"]).read_text().splitlines()
    lines.insert(ref["line"] - 1, _planted_line(ref["text"]))
    assert len(lines) <= 1000  # the module server's line limit
    body = {"issue": "instances fail to boot on compute-2", "logs": "\n".join(lines), "mode": "fast",
            "narrate": True}
    status, _, rep = raw_call(server["base"], "/analyze", json.dumps(body).encode())
    assert status == 200, rep
    flagged = [ev for ev in rep["evidence"] if ev.get("untrusted")]
    assert flagged and PLANTED[0] in flagged[0]["text"]
    assert not rep["evidence"][0].get("untrusted") and "firewall" not in rep["root_cause"]["summary"]
    assert "firewall" not in json.dumps(rep["narrative"]).lower()


# 3. the body limit on every route
@pytest.mark.parametrize("path", ["/model", "/no-such-route", "/analyze"])
def test_body_limit_on_every_route(server, path):
    status, headers, out = raw_call(server["base"], path, b"x" * (BODY_LIMIT + 1))
    _assert_error_shape(status, headers, out, 413)


# 4. one error shape, a request id in the answer and in the log
def test_request_id_echoed_and_logged(server):
    status, headers, out = raw_call(server["base"], "/analyze", json.dumps({"issue": "x", "corpus": "nope"}).encode(),
                                    headers={"X-Request-ID": "rid-resilience-42"})
    _assert_error_shape(status, headers, out, 404)
    assert out["request_id"] == "rid-resilience-42"
    status, headers, _ = raw_call(server["base"], "/model", None, method="GET",
                                  headers={"X-Request-ID": "bad id; " + "x" * 300})
    assert status == 200 and headers["X-Request-ID"] != "bad id" and len(headers["X-Request-ID"]) == 32
    deadline = time.time() + 5
    while "rid-resilience-42" not in _log(server) and time.time() < deadline:
        time.sleep(0.2)
    assert "rid-resilience-42" in _log(server)


def test_error_mapping_is_one_table():
    from bentos.http_errors import status_for
    from openstack_rca.errors import (DependencyDown, InputNotFound, InvalidInput, StorageFull, StoreBusy,
                                      UntrustedInput)
    from openstack_rca.registry import ModelNotReady

    cases = [(InvalidInput("x"), 422), (ValueError("x"), 422), (UntrustedInput("x"), 422),
             (InputNotFound("x"), 404), (StoreBusy("x"), 409), (StorageFull("x"), 507),
             (DependencyDown("x"), 503), (ModelNotReady("x"), 503), (KeyError("/secret/path"), 500)]
    for exc, code in cases:
        status, message, headers = status_for(exc)
        assert status == code, exc
        assert ("Retry-After" in headers) == (code in (409, 503))
    assert "/secret/path" not in status_for(KeyError("/secret/path"))[1]


def test_redact(tmp_path):
    from openstack_rca.errors import redact

    text = f"cannot reach http://u:{SECRET}@mlflow:5000/api and s3://k:{SECRET}@b/x; see {tmp_path}/models/m/1"
    out = redact(text, tmp_path)
    assert SECRET not in out and "http://mlflow:5000/api" in out and "models/m/1" in out
    assert str(tmp_path) not in out


# 5. no model at all: the service starts, answers 503 at once, and never shows the tracking URI's password
def test_no_model_starts_and_answers_503_at_once(blackhole, tmp_path):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed")
    home = tmp_path / "empty-home"
    home.mkdir()
    srv = _serve(home, tmp_path, {"MLFLOW_TRACKING_URI": blackhole}, wait_ready=False)
    try:
        base = srv["base"]
        deadline = time.time() + 120  # the scorer finishes its (failed) load
        while "scorer:" not in _log(srv) and time.time() < deadline:
            time.sleep(0.5)
        t0 = time.monotonic()
        assert call(base, "/readyz", token=None, timeout=5)[0] == 503
        assert time.monotonic() - t0 < 1.0
        for path, body in [("/score", {"lines": ["a"]}), ("/analyze", {"issue": "x", "logs": "a"}),
                           ("/model", {})]:
            t0 = time.monotonic()
            status, headers, out = raw_call(base, path, json.dumps(body).encode(), timeout=30)
            assert time.monotonic() - t0 < 5, path
            _assert_error_shape(status, headers, out, 503)
            assert headers["Retry-After"] and SECRET not in json.dumps(out) and str(home) not in out["error"]
        status, _, out = raw_call(base, "/model", None, method="GET")
        assert status == 503 and SECRET not in json.dumps(out)
        assert srv["proc"].poll() is None
        log = _log(srv)
        assert SECRET not in log and "Traceback" not in log
    finally:
        _stop(srv)
        srv["log"].close()


# 6. secure by default
def test_refuses_to_start_without_a_token(tmp_path):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed")
    env = {**os.environ, "RCA_HOME": str(tmp_path), "BENTOML_HOME": str(tmp_path / "bh")}
    for k in ("RCA_API_TOKEN", "RCA_ALLOW_ANONYMOUS"):
        env.pop(k, None)
    r = subprocess.run([str(BENTOML), "serve", "--host", "127.0.0.1", "--port", str(_free_port())], cwd=ROOT,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "refusing to start: RCA_API_TOKEN is not set" in r.stdout + r.stderr


def test_grpc_binds_loopback_when_anonymous(monkeypatch):
    from bentos.settings import ServeSettings

    assert ServeSettings(api_token="", allow_anonymous=True).grpc_bind == "127.0.0.1"
    assert ServeSettings(api_token="t").grpc_bind == "0.0.0.0"
    assert ServeSettings(api_token="t", grpc_host="10.0.0.5").grpc_bind == "10.0.0.5"
    with pytest.raises(SystemExit, match="RCA_ALLOW_ANONYMOUS"):
        ServeSettings().check()
    ServeSettings(allow_anonymous=True).check()
