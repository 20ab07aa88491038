"""A KServe Open Inference Protocol v2 (OIP) gRPC server for the log scorer.

One model, ``openstack-rca-lstm``: its input ``lines`` (BYTES, shape [-1]) holds one request's log lines; its
outputs hold one element per parsed record (a traceback joins several lines into one record, so there can be
fewer records than lines): ``line_no`` INT32, ``template_id`` BYTES, ``anomaly`` FP32, ``importance`` FP32 and
``anomalous`` BOOL. The response ``parameters`` carry the line accounting (``lines_total``, ``lines_blank``,
``lines_continuation``, ``lines_unparsed``, ``lines_truncated``, ``records``) as int64 parameters.

Any unchanged OIP client works (tritonclient.grpc, KServe's InferenceGRPCClient, grpcurl with the .proto):
inputs may come as ``contents.bytes_contents`` or as ``raw_input_contents`` (each element a 4-byte
little-endian length, then the bytes); outputs come back in the same form as the request's inputs.

Errors are gRPC status codes with one-line messages, never a stack trace: NOT_FOUND (unknown model or
version), INVALID_ARGUMENT (bad input), RESOURCE_EXHAUSTED (too many lines), UNAVAILABLE (model not ready),
UNAUTHENTICATED (bearer token), INTERNAL (scoring failed; the traceback goes to this module's logger).

The standard ``grpc.health.v1.Health`` service is registered too: SERVING for "" and for
``inference.GRPCInferenceService`` while ``ready_fn()`` is true, NOT_SERVING otherwise (polled, see
``start_server``'s ``health_poll_s``), and NOT_SERVING for all once ``stop`` begins.

In the real service::

    servicer = ScorerServicer(lambda lines: analyzer.score_documents(["\\n".join(lines)])[0], ...)
    server = start_server(servicer, port=settings.grpc_port, token=settings.api_token)
"""

from __future__ import annotations

import hmac
import logging
import struct
import threading
from concurrent import futures
from typing import Any, Callable, Iterable, Sequence

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import grpc_predict_v2_pb2 as pb
from . import grpc_predict_v2_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)

MODEL_NAME = "openstack-rca-lstm"
SERVICE_NAME = "inference.GRPCInferenceService"
SERVER_NAME = "openstack-rca"
PLATFORM = "tensorflow"
INPUT_NAME = "lines"
# name -> (OIP datatype, record key); the order is the response order when the request names no outputs
OUTPUTS: dict[str, tuple[str, str]] = {
    "line_no": ("INT32", "line_no"),
    "template_id": ("BYTES", "template_id"),
    "anomaly": ("FP32", "anomaly"),
    "importance": ("FP32", "importance"),
    "anomalous": ("BOOL", "anomalous"),
}
LINE_COUNTS = ("total", "blank", "continuation", "unparsed", "truncated")
# These answer without a token: orchestrators probe them (k8s gRPC probes send no metadata).
OPEN_METHODS = frozenset({f"/{SERVICE_NAME}/ServerLive", f"/{SERVICE_NAME}/ServerReady"})
HEALTH_PREFIX = "/grpc.health.v1.Health/"
AUTH_FAILED = "missing or invalid bearer token"

ScoreFn = Callable[[list[str]], dict]


class _Reject(Exception):
    """A request error: becomes ``context.abort(code, message)``."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code, self.message = code, message


# -- OIP tensor encodings --------------------------------------------------------------------------------------
def encode_raw_bytes(items: Iterable[bytes]) -> bytes:
    """OIP raw BYTES: each element as a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def decode_raw_bytes(raw: bytes, count: int) -> list[bytes]:
    """The inverse of ``encode_raw_bytes``; raises ``ValueError`` when ``raw`` does not hold ``count`` elements."""
    out, pos, end = [], 0, len(raw)
    view = memoryview(raw)
    while pos < end:
        if pos + 4 > end:
            raise ValueError(f"element {len(out)} has a truncated length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > end:
            raise ValueError(f"element {len(out)} declares {n} bytes but only {end - pos} remain")
        out.append(bytes(view[pos:pos + n]))
        pos += n
        if len(out) > count:
            break
    if len(out) != count:
        raise ValueError(f"shape says {count} elements, raw_input_contents holds {len(out)}"
                         + (" or more" if pos < end else ""))
    return out


def _raw(datatype: str, values: list) -> bytes:
    if datatype == "BYTES":
        return encode_raw_bytes(values)
    np_type = {"INT32": "<i4", "FP32": "<f4", "BOOL": np.bool_}[datatype]
    return np.asarray(values, dtype=np_type).tobytes()


def _fill_contents(contents: pb.InferTensorContents, datatype: str, values: list) -> None:
    field = {"BYTES": contents.bytes_contents, "INT32": contents.int_contents, "FP32": contents.fp32_contents,
             "BOOL": contents.bool_contents}[datatype]
    field.extend(values)


# -- the servicer ----------------------------------------------------------------------------------------------
class ScorerServicer(pb_grpc.GRPCInferenceServiceServicer):
    """OIP v2 over one ``score_fn``.

    ``score_fn(lines)`` gets one request's log lines and returns ``{"records": [...], "lines": {...}}`` (the shape
    of one ``Analyzer.score_documents`` entry). ``model_version_fn`` names the version being served (asked on
    each call, so a reloaded model shows); ``ready_fn`` says whether inference can run now.
    """

    def __init__(self, score_fn: ScoreFn, model_name: str = MODEL_NAME, *,
                 model_version_fn: Callable[[], str] = lambda: "1", ready_fn: Callable[[], bool] = lambda: True,
                 max_lines: int = 10_000, server_version: str | None = None):
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.score_fn = score_fn
        self.model_name = model_name
        self.model_version_fn = model_version_fn
        self.ready_fn = ready_fn
        self.max_lines = max_lines
        if server_version is None:
            from openstack_rca import __version__ as server_version
        self.server_version = server_version

    # -- helpers --------------------------------------------------------------------------------------------
    def is_ready(self) -> bool:
        try:
            return bool(self.ready_fn())
        except Exception:  # a failing readiness probe means "not ready", not a crash
            log.warning("ready_fn raised; reporting not ready", exc_info=True)
            return False

    def version(self) -> str:
        try:
            return str(self.model_version_fn() or "")
        except Exception:
            log.warning("model_version_fn raised; reporting no version", exc_info=True)
            return ""

    def _check_model(self, name: str, version: str) -> str:
        """The served version, or ``_Reject(NOT_FOUND)`` for another model or version."""
        if name != self.model_name:
            raise _Reject(grpc.StatusCode.NOT_FOUND,
                          f"unknown model {name!r}: this server serves {self.model_name!r}")
        current = self.version()
        if version and version != current:
            raise _Reject(grpc.StatusCode.NOT_FOUND,
                          f"model {name!r} has no version {version!r} (serving {current or 'none'!r})")
        return current

    @staticmethod
    def _abort(context: grpc.ServicerContext, err: _Reject):
        context.abort(err.code, err.message)

    # -- RPCs -----------------------------------------------------------------------------------------------
    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.is_ready())

    def ModelReady(self, request, context):
        try:
            self._check_model(request.name, request.version)
        except _Reject as err:
            self._abort(context, err)
        return pb.ModelReadyResponse(ready=self.is_ready())

    def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(name=SERVER_NAME, version=self.server_version, extensions=[])

    def ModelMetadata(self, request, context):
        try:
            version = self._check_model(request.name, request.version)
        except _Reject as err:
            self._abort(context, err)
        tm = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=self.model_name, versions=[version] if version else [], platform=PLATFORM,
            inputs=[tm(name=INPUT_NAME, datatype="BYTES", shape=[-1])],
            outputs=[tm(name=n, datatype=dt, shape=[-1]) for n, (dt, _) in OUTPUTS.items()])

    def ModelInfer(self, request, context):
        try:
            return self._infer(request)
        except _Reject as err:
            self._abort(context, err)
        except Exception as exc:  # never a stack trace to the client: one line there, the traceback here
            log.exception("ModelInfer failed (model %s, request id %r)", self.model_name, request.id)
            context.abort(grpc.StatusCode.INTERNAL, f"scoring failed ({type(exc).__name__}); see the server log")

    # -- inference ------------------------------------------------------------------------------------------
    def _lines(self, request: pb.ModelInferRequest) -> tuple[list[str], bool]:
        """The decoded ``lines`` input and whether it came as raw_input_contents."""
        invalid = grpc.StatusCode.INVALID_ARGUMENT
        names = [t.name for t in request.inputs]
        if INPUT_NAME not in names:
            raise _Reject(invalid, f"missing input {INPUT_NAME!r} (BYTES, shape [-1], one element per log line)"
                          + (f"; got {names}" if names else ""))
        extra = [n for n in names if n != INPUT_NAME]
        if extra or len(names) != 1:
            raise _Reject(invalid, f"model {self.model_name!r} takes exactly one input, {INPUT_NAME!r}; got {names}")
        tensor = request.inputs[0]
        if tensor.datatype != "BYTES":
            raise _Reject(invalid, f"input {INPUT_NAME!r} must have datatype BYTES, got {tensor.datatype or 'none'!r}")
        shape = list(tensor.shape)
        if len(shape) != 1 or shape[0] < 0:
            raise _Reject(invalid, f"input {INPUT_NAME!r} must have shape [n] (one element per log line), "
                          f"got {shape}")
        n = shape[0]
        if n > self.max_lines:
            raise _Reject(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"request has {n} lines; the limit is {self.max_lines} lines per request")
        raw = len(request.raw_input_contents) > 0
        if raw:
            if len(request.raw_input_contents) != len(request.inputs):
                raise _Reject(invalid, f"raw_input_contents has {len(request.raw_input_contents)} entries "
                              f"for {len(request.inputs)} inputs")
            if tensor.HasField("contents"):
                raise _Reject(invalid, f"input {INPUT_NAME!r} has both contents and raw_input_contents")
            try:
                items = decode_raw_bytes(request.raw_input_contents[0], n)
            except ValueError as exc:
                raise _Reject(invalid, f"input {INPUT_NAME!r}: bad raw BYTES encoding: {exc}") from None
        else:
            c = tensor.contents
            other = [f.name for f, _ in c.ListFields() if f.name != "bytes_contents"]
            if other:
                raise _Reject(invalid, f"input {INPUT_NAME!r} is BYTES but carries {', '.join(other)}")
            items = list(c.bytes_contents)
            if len(items) != n:
                raise _Reject(invalid, f"input {INPUT_NAME!r}: shape says {n} elements, "
                              f"bytes_contents holds {len(items)}")
        lines = [b.decode("utf-8", errors="replace") for b in items]
        # an element holding newlines is several lines once the document is joined: the limit counts those too
        total = sum(s.count("\n") for s in lines) + len(lines)
        if total > self.max_lines:
            raise _Reject(grpc.StatusCode.RESOURCE_EXHAUSTED,
                          f"request has {total} lines (elements hold newlines); "
                          f"the limit is {self.max_lines} lines per request")
        return lines, raw

    def _outputs(self, request: pb.ModelInferRequest) -> list[str]:
        wanted = [o.name for o in request.outputs]
        unknown = [n for n in wanted if n not in OUTPUTS]
        if unknown:
            raise _Reject(grpc.StatusCode.INVALID_ARGUMENT,
                          f"unknown output(s) {unknown}; this model has {list(OUTPUTS)}")
        return list(dict.fromkeys(wanted)) or list(OUTPUTS)

    def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        version = self._check_model(request.model_name, request.model_version)
        if not self.is_ready():
            raise _Reject(grpc.StatusCode.UNAVAILABLE, f"model {self.model_name!r} is not ready; retry later")
        lines, raw = self._lines(request)
        outputs = self._outputs(request)

        result = self.score_fn(lines)
        records: Sequence[dict[str, Any]] = result["records"]
        counts: dict[str, int] = result.get("lines") or {}

        resp = pb.ModelInferResponse(model_name=self.model_name, model_version=version, id=request.id)
        for key in LINE_COUNTS:
            if key in counts:
                resp.parameters[f"lines_{key}"].int64_param = int(counts[key])
        resp.parameters["records"].int64_param = len(records)
        for name in outputs:
            datatype, key = OUTPUTS[name]
            values = [r[key] for r in records]
            if datatype == "BYTES":
                values = [str(v).encode("utf-8") for v in values]
            elif datatype == "INT32":
                values = [int(v) for v in values]
            elif datatype == "FP32":
                values = [float(v) for v in values]
            else:
                values = [bool(v) for v in values]
            out = resp.outputs.add(name=name, datatype=datatype, shape=[len(values)])
            if raw:
                resp.raw_output_contents.append(_raw(datatype, values))
            else:
                _fill_contents(out.contents, datatype, values)
        return resp


# -- auth ------------------------------------------------------------------------------------------------------
def _abort_handler(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same kind as ``handler`` that rejects the call without reading its request."""

    def reject(request_or_iterator, context):
        context.abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(reject)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(reject)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(reject)
    return grpc.unary_unary_rpc_method_handler(reject)


class TokenInterceptor(grpc.ServerInterceptor):
    """Requires ``authorization: Bearer <token>`` on every RPC except ServerLive, ServerReady and the
    ``grpc.health.v1.Health`` service. With no token (None or ""), every call passes. The token is never logged."""

    def __init__(self, token: str | None):
        self._token = token.encode("utf-8") if token else None

    def _authorized(self, metadata) -> bool:
        for key, value in metadata or ():
            if key.lower() != "authorization":
                continue
            if isinstance(value, bytes):
                value = value.decode("utf-8", errors="replace")
            scheme, _, presented = value.strip().partition(" ")
            if scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode("utf-8"), self._token):
                return True
        return False

    def intercept_service(self, continuation, handler_call_details):
        method = handler_call_details.method
        if self._token is None or method in OPEN_METHODS or method.startswith(HEALTH_PREFIX):
            return continuation(handler_call_details)
        if self._authorized(handler_call_details.invocation_metadata):
            return continuation(handler_call_details)
        handler = continuation(handler_call_details)
        if handler is None:  # unknown method: UNIMPLEMENTED, as without a token
            return None
        log.info("rejected %s: %s", method, AUTH_FAILED)
        return _abort_handler(handler)


# -- the server ------------------------------------------------------------------------------------------------
class OIPServer(grpc.Server):
    """The started ``grpc.Server`` with its bound ``port`` and ``health`` servicer; ``stop`` first turns health
    to NOT_SERVING and ends the readiness poller."""

    def __init__(self, server: grpc.Server, port: int, health_servicer: health.HealthServicer,
                 poller_stop: threading.Event):
        self._server, self.port, self.health = server, port, health_servicer
        self._poller_stop = poller_stop

    def add_generic_rpc_handlers(self, generic_rpc_handlers):
        return self._server.add_generic_rpc_handlers(generic_rpc_handlers)

    def add_registered_method_handlers(self, service_name, method_handlers):
        return self._server.add_registered_method_handlers(service_name, method_handlers)

    def add_insecure_port(self, address):
        return self._server.add_insecure_port(address)

    def add_secure_port(self, address, server_credentials):
        return self._server.add_secure_port(address, server_credentials)

    def start(self):
        return self._server.start()

    def stop(self, grace):
        self._poller_stop.set()
        self.health.enter_graceful_shutdown()
        return self._server.stop(grace)

    def wait_for_termination(self, timeout=None):
        return self._server.wait_for_termination(timeout)


def _set_health(h: health.HealthServicer, ready: bool) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if ready else health_pb2.HealthCheckResponse.NOT_SERVING
    for service in ("", SERVICE_NAME):
        h.set(service, status)


def _poll_readiness(servicer: ScorerServicer, h: health.HealthServicer, stop: threading.Event,
                    interval: float) -> None:
    last = None
    while True:
        ready = servicer.is_ready()
        if ready != last:
            _set_health(h, ready)
            log.info("health: %s", "SERVING" if ready else "NOT_SERVING")
            last = ready
        if stop.wait(interval):
            return


def start_server(servicer: ScorerServicer, *, host: str = "0.0.0.0", port: int = 8001, token: str | None = None,
                 max_message_bytes: int = 32 * 1024 * 1024, max_workers: int = 8,
                 health_poll_s: float = 1.0) -> OIPServer:
    """Start the OIP service and ``grpc.health.v1`` on ``host:port`` (port 0 picks a free one: read
    ``server.port``) and return the started server.

    ``token`` (None or "" for none) turns on bearer auth (``TokenInterceptor``). ``grpc.so_reuseport`` is left at
    gRPC's default (on), so several worker processes can share the port. Health follows ``servicer.ready_fn``,
    polled every ``health_poll_s`` seconds.
    """
    options = [("grpc.max_send_message_length", max_message_bytes),
               ("grpc.max_receive_message_length", max_message_bytes)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="oip"),
                         interceptors=[TokenInterceptor(token)], options=options)
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    bound = server.add_insecure_port(address)
    if not bound:
        raise RuntimeError(f"could not bind the gRPC server to {address}")
    stop = threading.Event()
    _set_health(health_servicer, servicer.is_ready())
    threading.Thread(target=_poll_readiness, args=(servicer, health_servicer, stop, health_poll_s),
                     name="oip-health", daemon=True).start()
    server.start()
    log.info("OIP gRPC server on %s (model %s, auth %s)", f"{host}:{bound}", servicer.model_name,
             "on" if token else "off")
    return OIPServer(server, bound, health_servicer, stop)
