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
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from . import grpc_predict_v2_pb2 as pb
from . import grpc_predict_v2_pb2_grpc as pb_grpc
from .tensors import (INPUT_NAME, INVALID, MODEL_NAME, NOT_FOUND, TOO_LARGE, UNAVAILABLE, OIPModel,
                      Rejected, ScoreFn, check_count, check_header, check_inputs, decode_raw_bytes,
                      decode_raw_input, encode_raw_bytes, output_values, raw_output, response_parameters,
                      select_outputs, to_lines)

__all__ = ["MODEL_NAME", "AUTH_FAILED", "ScorerServicer", "ScoreFn", "start_server", "encode_raw_bytes",
           "decode_raw_bytes"]
log = logging.getLogger(__name__)

SERVICE_NAME = "inference.GRPCInferenceService"
# These answer without a token: orchestrators probe them (k8s gRPC probes send no metadata).
OPEN_METHODS = frozenset({f"/{SERVICE_NAME}/ServerLive", f"/{SERVICE_NAME}/ServerReady"})
HEALTH_PREFIX = "/grpc.health.v1.Health/"
AUTH_FAILED = "missing or invalid bearer token"
CODES = {INVALID: grpc.StatusCode.INVALID_ARGUMENT, NOT_FOUND: grpc.StatusCode.NOT_FOUND,
         TOO_LARGE: grpc.StatusCode.RESOURCE_EXHAUSTED, UNAVAILABLE: grpc.StatusCode.UNAVAILABLE}


def _fill_contents(contents: pb.InferTensorContents, datatype: str, values: list) -> None:
    field = {"BYTES": contents.bytes_contents, "INT32": contents.int_contents, "FP32": contents.fp32_contents,
             "BOOL": contents.bool_contents}[datatype]
    field.extend(values)


# -- the servicer ----------------------------------------------------------------------------------------------
class ScorerServicer(OIPModel, pb_grpc.GRPCInferenceServiceServicer):
    """OIP v2 over gRPC for one ``score_fn`` (the model and its checks: ``tensors.OIPModel``)."""

    @staticmethod
    def _abort(context: grpc.ServicerContext, err: Rejected):
        context.abort(CODES[err.kind], err.message)

    # -- RPCs -----------------------------------------------------------------------------------------------
    def ServerLive(self, request, context):
        return pb.ServerLiveResponse(live=True)

    def ServerReady(self, request, context):
        return pb.ServerReadyResponse(ready=self.is_ready())

    def ModelReady(self, request, context):
        try:
            self.check_model(request.name, request.version)
        except Rejected as err:
            self._abort(context, err)
        return pb.ModelReadyResponse(ready=self.is_ready())

    def ServerMetadata(self, request, context):
        return pb.ServerMetadataResponse(**self.server_metadata())

    def ModelMetadata(self, request, context):
        try:
            version = self.check_model(request.name, request.version)
        except Rejected as err:
            self._abort(context, err)
        meta = self.model_metadata(version)
        tm = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=meta["name"], versions=meta["versions"], platform=meta["platform"],
            inputs=[tm(**t) for t in meta["inputs"]], outputs=[tm(**t) for t in meta["outputs"]])

    def ModelInfer(self, request, context):
        try:
            return self._infer(request)
        except Rejected as err:
            self._abort(context, err)
        except Exception as exc:  # never a stack trace to the client: one line there, the traceback here
            log.exception("ModelInfer failed (model %s, request id %r)", self.model_name, request.id)
            context.abort(grpc.StatusCode.INTERNAL, f"scoring failed ({type(exc).__name__}); see the server log")

    # -- inference ------------------------------------------------------------------------------------------
    def _lines(self, request: pb.ModelInferRequest) -> tuple[list[str], bool]:
        """The decoded ``lines`` input and whether it came as raw_input_contents."""
        check_inputs([t.name for t in request.inputs], self.model_name)
        tensor = request.inputs[0]
        n = check_header(tensor.datatype, list(tensor.shape), self.max_lines)
        raw = len(request.raw_input_contents) > 0
        if raw:
            if len(request.raw_input_contents) != len(request.inputs):
                raise Rejected(INVALID, f"raw_input_contents has {len(request.raw_input_contents)} entries "
                                        f"for {len(request.inputs)} inputs")
            if tensor.HasField("contents"):
                raise Rejected(INVALID, f"input {INPUT_NAME!r} has both contents and raw_input_contents")
            items = decode_raw_input(request.raw_input_contents[0], n)
        else:
            c = tensor.contents
            other = [f.name for f, _ in c.ListFields() if f.name != "bytes_contents"]
            if other:
                raise Rejected(INVALID, f"input {INPUT_NAME!r} is BYTES but carries {', '.join(other)}")
            items = list(c.bytes_contents)
            check_count(n, len(items), "bytes_contents")
        return to_lines(items, self.max_lines), raw

    def _infer(self, request: pb.ModelInferRequest) -> pb.ModelInferResponse:
        version = self.check_model(request.model_name, request.model_version)
        self.check_ready()
        lines, raw = self._lines(request)
        outputs = select_outputs([o.name for o in request.outputs])

        result = self.score(lines)
        records = result["records"]

        resp = pb.ModelInferResponse(model_name=self.model_name, model_version=version, id=request.id)
        for key, value in response_parameters(result).items():
            resp.parameters[key].int64_param = value
        for name in outputs:
            datatype, values = output_values(records, name)
            out = resp.outputs.add(name=name, datatype=datatype, shape=[len(values)])
            if raw:
                resp.raw_output_contents.append(raw_output(datatype, values))
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
