"""The Open Inference Protocol v2 gRPC server (bentos/oip), with a fake scorer: no trained model needed here.

Covers the generated stub, the standard grpc.health.v1 check, bearer auth, limits and error codes, and an
unchanged third-party OIP client (tritonclient.grpc). The real model behind ``score_fn`` is tested elsewhere.
"""

from __future__ import annotations

import logging
import struct
import time

import grpc
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bentos.oip import grpc_predict_v2_pb2 as pb
from bentos.oip import grpc_predict_v2_pb2_grpc as pb_grpc
from bentos.oip.server import AUTH_FAILED, MODEL_NAME, ScorerServicer, decode_raw_bytes, encode_raw_bytes, start_server

MAX_LINES = 50
TOKEN = "s3cret-t0ken-value"
BOOM = "__raise__"
SERVICE = "inference.GRPCInferenceService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def fake_score(lines: list[str]) -> dict:
    """One record per non-empty line; values derived from the line so every output can be checked."""
    if BOOM in lines:
        raise RuntimeError("internal detail /srv/model/secret-path must not reach the client")
    records = [{"line_no": i + 1, "line_end": i + 1, "template_id": f"t{len(s)}", "template": s, "level": "INFO",
                "service": "nova", "parsed": True, "anomaly": 0.5, "anomalous": len(s) > 10,
                "importance": round(len(s) / 100, 2)}
               for i, s in enumerate(lines) if s.strip()]
    blank = sum(1 for s in lines if not s.strip())
    return {"records": records, "lines": {"total": len(lines), "blank": blank, "continuation": 0, "unparsed": 0,
                                          "truncated": 0}}


class Flag:
    def __init__(self, value: bool = True):
        self.value = value

    def __call__(self) -> bool:
        return self.value


def _serve(token=None, ready=None):
    servicer = ScorerServicer(fake_score, MODEL_NAME, model_version_fn=lambda: "7", ready_fn=ready or Flag(True),
                              max_lines=MAX_LINES)
    server = start_server(servicer, host="127.0.0.1", port=0, token=token, max_workers=4, health_poll_s=0.05)
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    grpc.channel_ready_future(channel).result(timeout=10)
    return server, channel


@pytest.fixture(scope="module")
def open_server():
    server, channel = _serve()
    yield server, channel
    channel.close()
    server.stop(None)


@pytest.fixture(scope="module")
def stub(open_server):
    return pb_grpc.GRPCInferenceServiceStub(open_server[1])


@pytest.fixture(scope="module")
def token_server():
    server, channel = _serve(token=TOKEN)
    yield server, channel
    channel.close()
    server.stop(None)


def infer_request(lines, *, raw=False, outputs=(), datatype="BYTES", shape=None, name="lines",
                  model=MODEL_NAME, request_id="req-1"):
    data = [s if isinstance(s, bytes) else s.encode() for s in lines]
    req = pb.ModelInferRequest(model_name=model, id=request_id)
    tensor = req.inputs.add(name=name, datatype=datatype, shape=[len(data)] if shape is None else shape)
    if raw:
        req.raw_input_contents.append(encode_raw_bytes(data))
    else:
        tensor.contents.bytes_contents.extend(data)
    for o in outputs:
        req.outputs.add(name=o)
    return req


def decode_outputs(resp) -> dict[str, list]:
    """Outputs by name, from raw_output_contents when present, else from contents."""
    out = {}
    for i, t in enumerate(resp.outputs):
        if resp.raw_output_contents:
            raw = resp.raw_output_contents[i]
            n = t.shape[0]
            if t.datatype == "BYTES":
                out[t.name] = decode_raw_bytes(raw, n)
            else:
                dtype = {"INT32": "<i4", "FP32": "<f4", "BOOL": np.bool_}[t.datatype]
                out[t.name] = np.frombuffer(raw, dtype=dtype).tolist()
                assert len(out[t.name]) == n
        else:
            c = t.contents
            out[t.name] = list({"BYTES": c.bytes_contents, "INT32": c.int_contents, "FP32": c.fp32_contents,
                                "BOOL": c.bool_contents}[t.datatype])
    return out


def rpc_error(call, *args, **kwargs) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args, timeout=10, **kwargs)
    return info.value


LINES = ["2017-05-16 00:00:00.008 nova.compute.manager [req-1] short", "", "x" * 5, "é ünïcode line here"]


# -- (a) the generated stub ---------------------------------------------------------------------------------------
def test_live_ready_and_server_metadata(stub):
    assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live is True
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready is True
    meta = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
    assert meta.name == "openstack-rca" and meta.version


def test_model_ready_and_metadata(stub):
    assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME), timeout=10).ready is True
    assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME, version="7"), timeout=10).ready is True
    meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL_NAME), timeout=10)
    assert meta.name == MODEL_NAME and list(meta.versions) == ["7"] and meta.platform == "tensorflow"
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.inputs] == [("lines", "BYTES", [-1])]
    assert [(t.name, t.datatype, list(t.shape)) for t in meta.outputs] == [
        ("line_no", "INT32", [-1]), ("template_id", "BYTES", [-1]), ("anomaly", "FP32", [-1]),
        ("importance", "FP32", [-1]), ("anomalous", "BOOL", [-1])]


def _check_full_response(resp, raw: bool):
    assert resp.model_name == MODEL_NAME and resp.model_version == "7" and resp.id == "req-1"
    assert bool(resp.raw_output_contents) is raw
    assert all(t.HasField("contents") is not raw for t in resp.outputs)
    assert [t.name for t in resp.outputs] == ["line_no", "template_id", "anomaly", "importance", "anomalous"]
    assert all(list(t.shape) == [3] for t in resp.outputs)  # 3 records: the blank line makes none
    out = decode_outputs(resp)
    assert out["line_no"] == [1, 3, 4]
    assert out["template_id"] == [f"t{len(LINES[0])}".encode(), b"t5", f"t{len(LINES[3])}".encode()]
    assert out["anomaly"] == pytest.approx([0.5, 0.5, 0.5])
    assert out["importance"] == pytest.approx([len(LINES[0]) / 100, 0.05, len(LINES[3]) / 100], abs=1e-6)
    assert out["anomalous"] == [True, False, True]
    params = {k: v.int64_param for k, v in resp.parameters.items()}
    assert params == {"lines_total": 4, "lines_blank": 1, "lines_continuation": 0, "lines_unparsed": 0,
                      "lines_truncated": 0, "records": 3}


def test_infer_bytes_contents(stub):
    resp = stub.ModelInfer(infer_request(LINES), timeout=10)
    _check_full_response(resp, raw=False)


def test_infer_raw_input_contents(stub):
    resp = stub.ModelInfer(infer_request(LINES, raw=True), timeout=10)
    _check_full_response(resp, raw=True)


def test_requested_outputs_subset(stub):
    for raw in (False, True):
        resp = stub.ModelInfer(infer_request(LINES, raw=raw, outputs=["anomaly", "template_id"]), timeout=10)
        assert [t.name for t in resp.outputs] == ["anomaly", "template_id"]
        out = decode_outputs(resp)
        assert out["template_id"][1] == b"t5" and out["anomaly"] == pytest.approx([0.5] * 3)


def test_invalid_utf8_is_replaced_and_empty_request_works(stub):
    resp = stub.ModelInfer(infer_request([b"ab\xffcd"], raw=True), timeout=10)
    assert decode_outputs(resp)["template_id"] == [b"t5"]  # "ab\ufffdcd": one replacement character
    empty = stub.ModelInfer(infer_request([]), timeout=10)
    assert [list(t.shape) for t in empty.outputs] == [[0]] * 5
    assert empty.parameters["lines_total"].int64_param == 0


# -- (b) grpc.health.v1 and readiness -----------------------------------------------------------------------------
def _wait_health(health, service, want, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        got = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status
        if got == want or time.monotonic() > deadline:
            return got
        time.sleep(0.02)


def test_health_follows_readiness():
    ready = Flag(True)
    server, channel = _serve(ready=ready)
    try:
        health = health_pb2_grpc.HealthStub(channel)
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        assert _wait_health(health, "", SERVING) == SERVING
        assert _wait_health(health, SERVICE, SERVING) == SERVING
        assert rpc_error(health.Check, health_pb2.HealthCheckRequest(service="no.such.Service")).code() \
            == grpc.StatusCode.NOT_FOUND

        ready.value = False
        assert _wait_health(health, "", NOT_SERVING) == NOT_SERVING
        assert _wait_health(health, SERVICE, NOT_SERVING) == NOT_SERVING
        assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready is False
        assert stub.ModelReady(pb.ModelReadyRequest(name=MODEL_NAME), timeout=10).ready is False
        assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live is True
        err = rpc_error(stub.ModelInfer, infer_request(LINES))
        assert err.code() == grpc.StatusCode.UNAVAILABLE and "not ready" in err.details()

        ready.value = True
        assert _wait_health(health, SERVICE, SERVING) == SERVING
        assert stub.ModelInfer(infer_request(LINES), timeout=10).outputs
    finally:
        channel.close()
        server.stop(None)


# -- (c) bearer auth ----------------------------------------------------------------------------------------------
def test_token_required_for_inference_and_metadata(token_server, caplog):
    caplog.set_level(logging.DEBUG, logger="bentos.oip")
    stub = pb_grpc.GRPCInferenceServiceStub(token_server[1])
    for metadata in (None, [("authorization", "Bearer wrong")], [("authorization", TOKEN)],
                     [("authorization", f"Basic {TOKEN}")], [("x-token", TOKEN)]):
        err = rpc_error(stub.ModelInfer, infer_request(LINES), metadata=metadata)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
        assert err.details() == AUTH_FAILED
    for call, req in ((stub.ModelMetadata, pb.ModelMetadataRequest(name=MODEL_NAME)),
                      (stub.ModelReady, pb.ModelReadyRequest(name=MODEL_NAME)),
                      (stub.ServerMetadata, pb.ServerMetadataRequest())):
        assert rpc_error(call, req).code() == grpc.StatusCode.UNAUTHENTICATED

    good = [("authorization", f"Bearer {TOKEN}")]
    _check_full_response(stub.ModelInfer(infer_request(LINES), metadata=good, timeout=10), raw=False)
    assert stub.ModelMetadata(pb.ModelMetadataRequest(name=MODEL_NAME), metadata=good, timeout=10).name == MODEL_NAME
    assert TOKEN not in caplog.text


def test_live_ready_and_health_need_no_token(token_server):
    channel = token_server[1]
    stub = pb_grpc.GRPCInferenceServiceStub(channel)
    assert stub.ServerLive(pb.ServerLiveRequest(), timeout=10).live is True
    assert stub.ServerReady(pb.ServerReadyRequest(), timeout=10).ready is True
    health = health_pb2_grpc.HealthStub(channel)
    assert health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10).status == SERVING
    assert health.Check(health_pb2.HealthCheckRequest(service=SERVICE), timeout=10).status == SERVING


# -- (d) limits and errors ----------------------------------------------------------------------------------------
def test_too_many_lines_is_resource_exhausted(stub):
    for raw in (False, True):
        err = rpc_error(stub.ModelInfer, infer_request(["line"] * (MAX_LINES + 1), raw=raw))
        assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and str(MAX_LINES) in err.details()
    # elements that hold newlines count as the lines they become
    err = rpc_error(stub.ModelInfer, infer_request(["a\nb\nc"] * 20))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "60" in err.details()
    assert stub.ModelInfer(infer_request(["line"] * MAX_LINES), timeout=10).outputs[0].shape == [MAX_LINES]


def _no_input():
    return pb.ModelInferRequest(model_name=MODEL_NAME)


def _fp32_input():
    req = pb.ModelInferRequest(model_name=MODEL_NAME)
    req.inputs.add(name="lines", datatype="FP32", shape=[2]).contents.fp32_contents.extend([1.0, 2.0])
    return req


def _bad_raw():
    req = infer_request(["abc"], raw=True)
    req.raw_input_contents[0] = struct.pack("<I", 99) + b"abc"
    return req


def _both_forms():
    req = infer_request(["abc"], raw=True)
    req.inputs[0].contents.bytes_contents.append(b"abc")
    return req


@pytest.mark.parametrize("make, fragment", [
    (_no_input, "missing input 'lines'"),
    (lambda: infer_request(["a"], name="text"), "missing input 'lines'"),
    (_fp32_input, "datatype BYTES"),
    (lambda: infer_request(["a", "b"], shape=[2, 1]), "shape"),
    (lambda: infer_request(["a", "b"], shape=[3]), "bytes_contents holds 2"),
    (lambda: infer_request(["a", "b"], raw=True, shape=[1]), "raw"),
    (_bad_raw, "declares 99 bytes"),
    (_both_forms, "both"),
    (lambda: infer_request(["a"], outputs=["anomaly", "nope"]), "unknown output"),
], ids=["no-inputs", "wrong-name", "fp32", "2d-shape", "shape-mismatch", "raw-count-mismatch", "raw-truncated",
        "raw-and-contents", "unknown-output"])
def test_bad_input_is_invalid_argument(stub, make, fragment):
    err = rpc_error(stub.ModelInfer, make())
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in err.details()


def test_unknown_model_or_version_is_not_found(stub):
    assert rpc_error(stub.ModelInfer, infer_request(LINES, model="resnet")).code() == grpc.StatusCode.NOT_FOUND
    assert rpc_error(stub.ModelMetadata, pb.ModelMetadataRequest(name="resnet")).code() == grpc.StatusCode.NOT_FOUND
    err = rpc_error(stub.ModelReady, pb.ModelReadyRequest(name="resnet"))
    assert err.code() == grpc.StatusCode.NOT_FOUND and MODEL_NAME in err.details()
    req = infer_request(LINES)
    req.model_version = "3"
    assert rpc_error(stub.ModelInfer, req).code() == grpc.StatusCode.NOT_FOUND
    req.model_version = "7"
    assert stub.ModelInfer(req, timeout=10).model_version == "7"


def test_scorer_failure_is_internal_without_a_traceback(stub, caplog):
    caplog.set_level(logging.ERROR, logger="bentos.oip")
    err = rpc_error(stub.ModelInfer, infer_request(["fine", BOOM]))
    assert err.code() == grpc.StatusCode.INTERNAL
    details = err.details()
    assert "\n" not in details and "Traceback" not in details and "secret-path" not in details
    assert "RuntimeError" in details
    assert "Traceback" in caplog.text and "secret-path" in caplog.text  # the server log keeps the traceback


# -- (e) an unchanged third-party OIP client ------------------------------------------------------------------------
def _triton():
    return pytest.importorskip("tritonclient.grpc", reason="tritonclient not installed: pip install tritonclient")


def _triton_infer(client, lines, **kwargs):
    tc = _triton()
    data = np.array([s.encode() for s in lines], dtype=np.object_)
    inp = tc.InferInput("lines", [len(lines)], "BYTES")
    inp.set_data_from_numpy(data)
    return client.infer(MODEL_NAME, [inp], **kwargs)


def test_tritonclient_against_the_server(open_server):
    tc = _triton()
    client = tc.InferenceServerClient(url=f"127.0.0.1:{open_server[0].port}")
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready(MODEL_NAME)
        meta = client.get_model_metadata(MODEL_NAME)
        assert meta.name == MODEL_NAME and [i.name for i in meta.inputs] == ["lines"]
        assert [o.name for o in meta.outputs] == ["line_no", "template_id", "anomaly", "importance", "anomalous"]

        result = _triton_infer(client, LINES, request_id="t-1")
        assert result.as_numpy("line_no").tolist() == [1, 3, 4]
        assert result.as_numpy("line_no").dtype == np.int32
        assert result.as_numpy("template_id").tolist() == [f"t{len(LINES[0])}".encode(), b"t5",
                                                           f"t{len(LINES[3])}".encode()]
        assert result.as_numpy("anomaly").dtype == np.float32
        assert result.as_numpy("anomaly").tolist() == pytest.approx([0.5] * 3)
        assert result.as_numpy("anomalous").tolist() == [True, False, True]
        response = result.get_response()
        assert response.id == "t-1" and response.parameters["lines_total"].int64_param == 4

        subset = _triton_infer(client, LINES, outputs=[tc.InferRequestedOutput("importance")])
        assert subset.as_numpy("anomaly") is None
        assert subset.as_numpy("importance").tolist() == pytest.approx([len(LINES[0]) / 100, 0.05,
                                                                         len(LINES[3]) / 100], abs=1e-6)

        with pytest.raises(tc.InferenceServerException) as info:
            _triton_infer(client, ["x"] * (MAX_LINES + 1))
        assert "RESOURCE_EXHAUSTED" in str(info.value.status())
    finally:
        client.close()


def test_tritonclient_with_bearer_token(token_server):
    tc = _triton()
    client = tc.InferenceServerClient(url=f"127.0.0.1:{token_server[0].port}")
    try:
        assert client.is_server_live()
        with pytest.raises(tc.InferenceServerException) as info:
            _triton_infer(client, LINES)
        assert "UNAUTHENTICATED" in str(info.value.status())
        headers = {"authorization": f"Bearer {TOKEN}"}
        assert client.is_model_ready(MODEL_NAME, headers=headers)
        result = _triton_infer(client, LINES, headers=headers)
        assert result.as_numpy("template_id").tolist()[1] == b"t5"
    finally:
        client.close()
