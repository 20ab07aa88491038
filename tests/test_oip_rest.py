"""KServe's Open Inference Protocol v2 over REST on the entry's HTTP port, against one real `bentoml serve`
(trained model, bearer token, /score's line limit of 500), with the unchanged `tritonclient.http` client.

The same lines give the same template ids, anomalies and importances over REST (binary and JSON tensors), over
gRPC and through /score; bad tensors are 400 with a message, a wrong token 401, an unknown model 404, too many
lines 413 (the guard's limit); the v2 probes are open. Also: `bentoml serve --host 127.0.0.1` binds the scorer's
gRPC port to 127.0.0.1 only, and a service with no model answers not ready.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import urllib.request

import numpy as np
import pytest

from openstack_rca import simulate

from .serve_process import serve
from .test_service import TOKEN, _free_port, call

httpclient = pytest.importorskip("tritonclient.http", reason="tritonclient is a dev dependency")
from tritonclient.utils import InferenceServerException  # noqa: E402

MODEL = "openstack-rca-lstm"


def auth() -> dict:
    """A fresh header dict per call: tritonclient.http writes Inference-Header-Content-Length into the one given."""
    return {"Authorization": f"Bearer {TOKEN}"}

MAX_LINES = 500


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    cfg, _ = trained
    port, grpc_port = _free_port(), _free_port()
    env = {**os.environ, "RCA_HOME": str(cfg.home), "RCA_API_TOKEN": TOKEN, "RCA_GRPC_PORT": str(grpc_port),
           "RCA_SERVE_MAX_SCORE_LINES": str(MAX_LINES), "RCA_NARRATIVE_ENABLED": "0",
           "BENTOML_HOME": str(tmp_path_factory.mktemp("bentoml-home")), "HF_HUB_OFFLINE": "1"}
    for key in ("MLFLOW_TRACKING_URI", "RCA_GRPC_HOST", "ANTHROPIC_API_KEY"):
        env.pop(key, None)
    srv = serve([], port, env, tmp_path_factory.mktemp("serve-log") / "serve.log")
    srv.grpc_port = grpc_port
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def client(server):
    c = httpclient.InferenceServerClient(url=server.base.removeprefix("http://"), network_timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def lines(tmp_path_factory):
    d = tmp_path_factory.mktemp("oip-libvirt")
    truth = simulate.simulate("libvirt_domain_failure", d, lines=1500, seed=5)
    text = "".join((d / f).read_text() for f in truth["files"])
    return text.splitlines()[:300]


def _input(values: list[str], binary: bool = True, datatype: str = "BYTES"):
    inp = httpclient.InferInput("lines", [len(values)], datatype)
    inp.set_data_from_numpy(np.array([v.encode() for v in values], dtype=np.object_), binary_data=binary)
    return inp


def _post(server, path: str, doc, token: str | None = TOKEN, raw: bytes | None = None, headers=None):
    data = raw if raw is not None else json.dumps(doc).encode()
    h = {"Content-Type": "application/json", **(headers or {})}
    if token:
        h["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(server.base + path, data=data, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def _tensor(values, **over):
    return {"inputs": [{"name": "lines", "shape": [len(values)], "datatype": "BYTES", "data": values, **over}]}


# -- probes and metadata --------------------------------------------------------------------------------------------
def test_probes_are_open_and_metadata_needs_the_token(server, client):
    assert client.is_server_live() and client.is_server_ready()  # no headers: the probes are open
    assert call(server.base, "/v2/health/ready", token=None) == (200, {"ready": True})
    assert call(server.base, "/v2/health/live", token=None) == (200, {"live": True})
    meta = client.get_server_metadata(headers=auth())
    assert meta["name"] == "openstack-rca" and meta["version"]
    assert client.is_model_ready(MODEL, headers=auth()) and client.is_model_ready(MODEL, "1", headers=auth())
    model = client.get_model_metadata(MODEL, headers=auth())
    assert model["versions"] == ["1"] and model["inputs"] == [{"name": "lines", "datatype": "BYTES", "shape": [-1]}]
    assert [o["name"] for o in model["outputs"]] == ["line_no", "template_id", "anomaly", "importance", "anomalous"]
    assert client.get_model_metadata(MODEL, "1", headers=auth())["name"] == MODEL


def test_wrong_or_missing_token_is_401(server, client, lines):
    for headers in (None, {"Authorization": "Bearer wrong"}):
        with pytest.raises(InferenceServerException) as info:
            client.infer(MODEL, [_input(lines[:3])], headers=headers)
        assert info.value.status() == "401" and "bearer token" in info.value.message()
        with pytest.raises(InferenceServerException) as info:
            client.get_model_metadata(MODEL, headers=headers)
        assert info.value.status() == "401"
    assert call(server.base, "/v2", token="wrong")[0] == 401
    assert not client.is_model_ready(MODEL)  # 401 without the token


def test_unknown_model_or_version_is_404(server, client, lines):
    for model, version in (("resnet", ""), (MODEL, "3")):
        with pytest.raises(InferenceServerException) as info:
            client.infer(model, [_input(lines[:3])], model_version=version, headers=auth())
        assert info.value.status() == "404" and MODEL in info.value.message()
        with pytest.raises(InferenceServerException) as info:
            client.get_model_metadata(model, version, headers=auth())
        assert info.value.status() == "404"
    assert call(server.base, "/v2/models/resnet/ready")[0] == 404


# -- inference: REST == gRPC == /score ------------------------------------------------------------------------------
def test_rest_equals_grpc_and_score(server, client, lines):
    binary = client.infer(MODEL, [_input(lines)], headers=auth(), request_id="r-1")  # binary tensors both ways
    as_json = client.infer(MODEL, [_input(lines, binary=False)], headers=auth(),
                           outputs=[httpclient.InferRequestedOutput(n, binary_data=False)
                                    for n in ("line_no", "template_id", "anomaly", "importance", "anomalous")])
    resp = binary.get_response()
    assert resp["id"] == "r-1" and resp["model_name"] == MODEL and resp["model_version"] == "1"
    assert all("binary_data_size" in o["parameters"] for o in resp["outputs"])
    assert all("data" in o for o in as_json.get_response()["outputs"])

    status, score = call(server.base, "/score", {"lines": lines})
    assert status == 200, score
    records = score["records"]
    assert resp["parameters"] == {**{f"lines_{k}": v for k, v in score["lines"].items()}, "records": len(records)}

    grpcclient = pytest.importorskip("tritonclient.grpc")
    g = grpcclient.InferenceServerClient(url=f"127.0.0.1:{server.grpc_port}")
    try:
        ginp = grpcclient.InferInput("lines", [len(lines)], "BYTES")
        ginp.set_data_from_numpy(np.array([v.encode() for v in lines], dtype=np.object_))
        via_grpc = g.infer(MODEL, [ginp], headers={"authorization": f"Bearer {TOKEN}"})
    finally:
        g.close()

    want_ids = [r["template_id"] for r in records]
    want_anomaly = np.array([r["anomaly"] for r in records], dtype=np.float32)
    for res in (binary, as_json, via_grpc):
        ids = res.as_numpy("template_id").tolist()
        assert [i.decode() if isinstance(i, bytes) else i for i in ids] == want_ids
        assert res.as_numpy("line_no").tolist() == [r["line_no"] for r in records]
        assert res.as_numpy("line_no").dtype == np.int32 and res.as_numpy("anomaly").dtype == np.float32
        assert np.array_equal(res.as_numpy("anomaly"), want_anomaly)
        assert np.array_equal(res.as_numpy("importance"),
                              np.array([r["importance"] for r in records], dtype=np.float32))
        assert res.as_numpy("anomalous").tolist() == [r["anomalous"] for r in records]
    assert len(records) > 100 and any(r["anomalous"] for r in records)  # a real incident, scored


def test_requested_outputs_and_plain_json(server, lines):
    status, out = _post(server, f"/v2/models/{MODEL}/versions/1/infer",
                        {**_tensor(lines[:20]), "id": "j-1", "outputs": [{"name": "anomaly"}]})
    assert status == 200, out
    assert out["id"] == "j-1" and [o["name"] for o in out["outputs"]] == ["anomaly"]
    (anomaly,) = out["outputs"]
    assert anomaly["datatype"] == "FP32" and anomaly["shape"] == [len(anomaly["data"])] and anomaly["data"]
    assert all(0 <= a <= 1 for a in anomaly["data"])


# -- bad tensors, limits ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("doc, raw, words", [
    (None, b"{not json", "not valid JSON"),
    ({"inputs": "lines"}, None, "list of tensors"),
    ({"inputs": []}, None, "missing input 'lines'"),
    (_tensor(["a"], name="text"), None, "missing input 'lines'"),
    (_tensor([1.0], datatype="FP32"), None, "datatype BYTES"),
    (_tensor(["a", "b"], shape=[2, 1]), None, "shape [n]"),
    (_tensor(["a", "b"], shape=[3]), None, "shape says 3 elements, data holds 2"),
    (_tensor(["a", 7]), None, "must be strings"),
    (_tensor(["a"], parameters={"binary_data_size": 9}), None, "binary_data_size"),
    ({**_tensor(["a"]), "outputs": [{"name": "nope"}]}, None, "unknown output"),
    ({"inputs": [{"name": "lines", "shape": [1], "datatype": "BYTES", "data": ["a"]},
                 {"name": "more", "shape": [1], "datatype": "BYTES", "data": ["b"]}]}, None,
     "model 'openstack-rca-lstm' takes exactly one input"),
], ids=["not-json", "inputs-not-list", "no-inputs", "wrong-name", "fp32", "2d", "count", "non-string",
        "binary-size", "unknown-output", "two-inputs"])
def test_bad_tensors_are_400_with_a_message(server, doc, raw, words):
    status, err = _post(server, f"/v2/models/{MODEL}/infer", doc, raw=raw)
    assert status == 400, err
    assert words.lower() in err["error"].lower() and "Traceback" not in err["error"]


def test_bad_binary_tensors_are_400(server, client):
    with pytest.raises(InferenceServerException) as info:  # tritonclient itself, a FP32 "lines"
        inp = httpclient.InferInput("lines", [2], "FP32")
        inp.set_data_from_numpy(np.array([1.0, 2.0], dtype=np.float32))
        client.infer(MODEL, [inp], headers=auth())
    assert info.value.status() == "400" and "datatype BYTES" in info.value.message()
    head = json.dumps({"inputs": [{"name": "lines", "shape": [2], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": 7}}]}).encode()
    body = head + b"\x05\x00\x00\x00abc"  # declares 5 bytes, holds 3
    status, err = _post(server, f"/v2/models/{MODEL}/infer", None, raw=body,
                        headers={"Inference-Header-Content-Length": str(len(head))})
    assert status == 400 and "declares 5 bytes" in err["error"]
    status, err = _post(server, f"/v2/models/{MODEL}/infer", None, raw=body,
                        headers={"Inference-Header-Content-Length": "999999"})
    assert status == 400 and "Inference-Header-Content-Length" in err["error"]


def test_line_limit_covers_infer(server, client):
    with pytest.raises(InferenceServerException) as info:
        client.infer(MODEL, [_input(["x"] * (MAX_LINES + 1))], headers=auth())
    assert info.value.status() == "413" and str(MAX_LINES) in info.value.message()
    status, err = _post(server, f"/v2/models/{MODEL}/infer", _tensor(["a\nb"] * 300))  # 600 lines once joined
    assert status == 413 and "600" in err["error"]
    status, out = _post(server, f"/v2/models/{MODEL}/infer", _tensor(["x"] * MAX_LINES))
    assert status == 200 and out["parameters"]["lines_total"] == MAX_LINES


# -- the gRPC bind host ---------------------------------------------------------------------------------------------
def _listening(port: int) -> set[str]:
    """Local addresses listening on ``port`` (Linux /proc/net/tcp{,6})."""
    found = set()
    for name, width in (("/proc/net/tcp", 8), ("/proc/net/tcp6", 32)):
        try:
            rows = open(name).read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                raw = b"".join(bytes.fromhex(addr[i:i + 8])[::-1] for i in range(0, width, 8))  # LE words
                ip = ipaddress.ip_address(raw)
                found.add(str(getattr(ip, "ipv4_mapped", None) or ip))  # gRPC binds v4 on a dual-stack socket
    return found


def _non_loopback_ip() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: picks the outgoing interface's address
            ip = s.getsockname()[0]
        except OSError:
            return None
    return None if ip.startswith("127.") else ip


def test_grpc_binds_the_serve_host(server):
    assert _listening(server.grpc_port) == {"127.0.0.1"}, "gRPC must listen where `bentoml serve --host` said"
    ip = _non_loopback_ip()
    if ip:
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((ip, server.grpc_port)) != 0, f"gRPC reachable on {ip}"


# -- no model: not ready ---------------------------------------------------------------------------------------------
def test_no_model_is_not_ready(tmp_path):
    port = _free_port()
    env = {**os.environ, "RCA_HOME": str(tmp_path / "empty-home"), "RCA_API_TOKEN": TOKEN,
           "RCA_GRPC_PORT": str(_free_port()), "RCA_NARRATIVE_ENABLED": "0",
           "BENTOML_HOME": str(tmp_path / "bentoml-home"), "HF_HUB_OFFLINE": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    srv = serve([], port, env, tmp_path / "serve.log", wait_for="/livez")
    try:
        assert call(srv.base, "/v2/health/ready", token=None) == (503, {"ready": False})
        assert call(srv.base, "/v2/health/live", token=None)[0] == 200
        status, err = call(srv.base, f"/v2/models/{MODEL}/ready")
        assert status == 503 and "no model" in err["error"]
        status, err = _post(srv, f"/v2/models/{MODEL}/infer", _tensor(["a"]))
        assert status == 503 and "rca train" in err["error"]
    finally:
        srv.stop()


@pytest.mark.parametrize("env, want", [
    ({"RCA_API_TOKEN": "t", "BENTOML_RUNNER_MAP": '{"openstack-rca": "http://127.0.0.1:3000", '
                                                  '"rca-scorer": "tcp://127.0.0.1:4111"}'}, "127.0.0.1"),
    ({"RCA_API_TOKEN": "t", "BENTOML_RUNNER_MAP": '{"openstack-rca": "http://localhost:3000"}'}, "0.0.0.0"),
    ({"RCA_API_TOKEN": "t", "BENTOML_RUNNER_MAP": '{"rca-scorer": "https://10.1.2.3:3000"}'}, "10.1.2.3"),
    ({"RCA_API_TOKEN": "t", "BENTOML_RUNNER_MAP": '{"openstack-rca": "http://127.0.0.1:3000"}',
      "RCA_GRPC_HOST": "0.0.0.0"}, "0.0.0.0"),  # RCA_GRPC_HOST still wins
    ({"RCA_ALLOW_ANONYMOUS": "1", "BENTOML_RUNNER_MAP": '{"openstack-rca": "http://localhost:3000"}'},
     "127.0.0.1"),  # no token: never an open port
    ({"RCA_API_TOKEN": "t"}, "0.0.0.0"),  # outside `bentoml serve`
    ({"RCA_API_TOKEN": "t", "BENTOML_RUNNER_MAP": "not json"}, "0.0.0.0"),
])
def test_grpc_bind_follows_the_serve_host(monkeypatch, env, want):
    from bentos.settings import ServeSettings

    for key in ("RCA_API_TOKEN", "RCA_ALLOW_ANONYMOUS", "RCA_GRPC_HOST", "BENTOML_RUNNER_MAP"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert ServeSettings.from_env().grpc_bind == want
