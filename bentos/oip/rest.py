"""KServe Open Inference Protocol v2 over REST, on the entry service's HTTP port, beside the gRPC server.

The same model as gRPC (``tensors``): input ``lines`` (BYTES, [-1]), outputs ``line_no``, ``template_id``,
``anomaly``, ``importance``, ``anomalous``, the line accounting in the response ``parameters``. Routes (KServe's
v2 REST spec): ``GET /v2``, ``GET /v2/health/live``, ``GET /v2/health/ready``, ``GET /v2/models/{name}[/versions/
{v}]``, ``GET /v2/models/{name}[/versions/{v}]/ready``, ``POST /v2/models/{name}[/versions/{v}]/infer``.

Tensors come as JSON (``{"name", "shape", "datatype", "data"}``, BYTES data as strings) or in Triton's binary
tensor data extension, which ``tritonclient.http`` uses by default: the JSON header is the first
``Inference-Header-Content-Length`` bytes of the body, an input's ``parameters.binary_data_size`` bytes follow it
(BYTES elements length-prefixed, as gRPC's raw contents). Outputs are binary when the request asks
(``parameters.binary_data_output`` or an output's ``parameters.binary_data``), JSON otherwise.

Errors are ``{"error": "..."}`` (plus the request id): 400 bad tensors, 404 unknown model or version, 413 too many
lines, 503 no model / not ready / scorer down (with Retry-After). Auth, the body limit and the line limit are the
HTTP guard's (``bentos.http_guard``), which checks an infer body with ``precheck`` before any work is done.
"""

from __future__ import annotations

import json
import re
from urllib.parse import unquote
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..http_errors import RETRY_AFTER_S, body, error_response
from .tensors import (INPUT_NAME, INVALID, NUMPY_TYPES, STATUS, UNAVAILABLE, OIPModel, Rejected, check_count,
                      check_header, check_inputs, output_values, raw_output, response_parameters, select_outputs,
                      to_lines)

INFER_PATH = re.compile(r"/v2/models/(?P<name>[^/]+)(?:/versions/[^/]+)?/infer")
"""The infer route, for the guard (which sees paths before routing)."""
HEADER_LENGTH = "inference-header-content-length"


@dataclass
class InferRequest:
    id: str = ""
    lines: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    binary: set[str] = field(default_factory=set)
    """Outputs to send as binary tensor data."""


def _split(raw: bytes, header_length: str | bytes | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return raw, b""
    text = header_length.decode("latin-1") if isinstance(header_length, bytes) else header_length
    if not text.strip().isdigit() or int(text) > len(raw):
        raise Rejected(INVALID, f"Inference-Header-Content-Length is {text!r}; it must be the byte length of the "
                                f"JSON header (at most the body's {len(raw)} bytes)")
    n = int(text)
    return raw[:n], raw[n:]


def _obj(value: Any, what: str) -> dict:
    if not isinstance(value, dict):
        raise Rejected(INVALID, f"{what} must be a JSON object, got {type(value).__name__}")
    return value


def _flat(data: Any) -> list:
    """Row-major data may come nested (KServe allows it); [-1]-shaped BYTES is one level once flattened."""
    out, stack = [], [data]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(reversed(node))
        else:
            out.append(node)
    return out


def parse_infer(raw: bytes, header_length: str | bytes | None, max_lines: int, model_name: str = "") -> InferRequest:
    """An infer body -> the request's lines and wanted outputs; ``Rejected`` says why not."""
    from ..http_guard import parse_json  # the guard's strict JSON rules (depth, numbers, UTF-8)

    head, binary = _split(raw, header_length)
    try:
        doc = _obj(parse_json(head), "the request body")
    except ValueError as exc:
        raise Rejected(INVALID, f"request body is not valid JSON: {exc}") from None
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not all(isinstance(t, dict) for t in inputs):
        raise Rejected(INVALID, f"`inputs` must be a list of tensors {{name, shape, datatype, data}}; input "
                                f"{INPUT_NAME!r} is BYTES, shape [n], one element per log line")
    check_inputs([str(t.get("name")) for t in inputs], model_name)
    tensor = inputs[0]
    shape = tensor.get("shape")
    n = check_header(str(tensor.get("datatype") or ""), shape if isinstance(shape, list) else [shape], max_lines)
    params = _obj(tensor.get("parameters") or {}, f"input {INPUT_NAME!r} parameters")
    size = params.get("binary_data_size")
    if size is not None:
        if "data" in tensor:
            raise Rejected(INVALID, f"input {INPUT_NAME!r} has both `data` and binary_data_size")
        if not isinstance(size, int) or isinstance(size, bool) or size != len(binary):
            raise Rejected(INVALID, f"input {INPUT_NAME!r}: binary_data_size is {size!r} but {len(binary)} bytes "
                                    "follow the JSON header")
        from .tensors import decode_raw_input

        items: list = decode_raw_input(binary, n)
    else:
        if binary:
            raise Rejected(INVALID, f"{len(binary)} bytes follow the JSON header but no input declares "
                                    "binary_data_size")
        if "data" not in tensor:
            raise Rejected(INVALID, f"input {INPUT_NAME!r} has no `data` (a list of strings, one per log line)")
        items = _flat(tensor["data"])
        bad = next((i for i, v in enumerate(items) if not isinstance(v, str)), None)
        if bad is not None:
            raise Rejected(INVALID, f"input {INPUT_NAME!r}: BYTES data must be strings; element {bad} is "
                                    f"{type(items[bad]).__name__}")
        check_count(n, len(items), "data")
    lines = to_lines(items, max_lines)

    outs = doc.get("outputs") or []
    if not isinstance(outs, list) or not all(isinstance(o, dict) for o in outs):
        raise Rejected(INVALID, "`outputs` must be a list of {name, parameters}")
    outputs = select_outputs([str(o.get("name")) for o in outs])
    req_params = _obj(doc.get("parameters") or {}, "request parameters")
    all_binary = req_params.get("binary_data_output") is True
    binary_out = set()
    for name in outputs:
        spec = next((o for o in outs if o.get("name") == name), {})
        own = _obj(spec.get("parameters") or {}, f"output {name!r} parameters").get("binary_data")
        if own is True or (own is None and all_binary):
            binary_out.add(name)
    rid = doc.get("id", "")
    return InferRequest(id=rid if isinstance(rid, str) else str(rid), lines=lines, outputs=outputs,
                        binary=binary_out)


def precheck(raw: bytes, header_length: bytes | None, max_lines: int, path: str = "") -> tuple[int, str] | None:
    """For the guard: (status, message) when an infer body is refused, before the request is routed."""
    m = INFER_PATH.fullmatch(path)
    try:
        parse_infer(raw, header_length, max_lines, unquote(m["name"]) if m else "")
    except Rejected as err:
        return STATUS[err.kind], err.message
    return None


def encode_response(model: OIPModel, version: str, req: InferRequest, result: dict) -> tuple[bytes, dict]:
    """(body, headers) of a scored request: JSON, with binary outputs appended after it when asked."""
    records = result["records"]
    outputs, chunks = [], []
    for name in req.outputs:
        datatype, values = output_values(records, name)
        tensor: dict[str, Any] = {"name": name, "datatype": datatype, "shape": [len(values)]}
        if name in req.binary:
            data = raw_output(datatype, values)
            tensor["parameters"] = {"binary_data_size": len(data)}
            chunks.append(data)
        elif datatype == "BYTES":
            tensor["data"] = [v.decode("utf-8", errors="replace") for v in values]
        elif datatype == "FP32":  # the float32 value, as gRPC sends it
            import numpy as np

            tensor["data"] = np.asarray(values, dtype=NUMPY_TYPES["FP32"]).astype(float).tolist()
        else:
            tensor["data"] = values
        outputs.append(tensor)
    doc = {"model_name": model.model_name, "model_version": version, "id": req.id,
           "parameters": response_parameters(result), "outputs": outputs}
    head = json.dumps(doc).encode()
    if not chunks:
        return head, {"content-type": "application/json"}
    return head + b"".join(chunks), {"content-type": "application/octet-stream",
                                     "inference-header-content-length": str(len(head))}


def _error(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(body(message), status_code=status, headers=headers)


def build_app(model_fn: Callable[[], OIPModel | None], ready_fn: Callable[[], Awaitable[bool]]) -> Starlette:
    """The v2 routes over ``model_fn()`` (None while there is no model: 503) and ``ready_fn`` (the service's
    readiness, the same answer as /readyz: model loaded, warmed up, scorer reachable)."""

    def model_or_reject() -> OIPModel:
        model = model_fn()
        if model is None:
            raise Rejected(UNAVAILABLE, "no model loaded; run `rca train` and restart the service")
        return model

    def handle(fn: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return await fn(request)
            except Rejected as err:
                return _error(STATUS[err.kind], err.message)
            except Exception as exc:  # noqa: BLE001 - one mapping to a status; a generic 500 for the unexpected
                return error_response(exc, "v2")
        return endpoint

    async def server_metadata(request: Request) -> Response:
        model = model_fn()
        if model is None:
            from openstack_rca import __version__
            from .tensors import SERVER_NAME

            return JSONResponse({"name": SERVER_NAME, "version": __version__, "extensions": []})
        return JSONResponse(model.server_metadata())

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        ok = await ready_fn()
        return JSONResponse({"ready": ok}, status_code=200 if ok else 503)

    def _named(request: Request) -> tuple[OIPModel, str]:
        model = model_or_reject()
        p = request.path_params
        return model, model.check_model(p["name"], p.get("version", ""))

    async def model_metadata(request: Request) -> Response:
        model, version = _named(request)
        return JSONResponse(model.model_metadata(version))

    async def model_ready(request: Request) -> Response:
        model, _ = _named(request)
        ok = model.is_ready() and await ready_fn()
        return JSONResponse({"name": model.model_name, "ready": ok}, status_code=200 if ok else 503)

    async def infer(request: Request) -> Response:
        model, version = _named(request)
        model.check_ready()
        req = parse_infer(await request.body(), request.headers.get(HEADER_LENGTH), model.max_lines,
                          model.model_name)
        result = await anyio.to_thread.run_sync(model.score, req.lines)
        data, headers = encode_response(model, version, req, result)
        return Response(data, headers=headers)

    routes = [Route("/v2", handle(server_metadata), methods=["GET"]),
              Route("/v2/health/live", handle(live), methods=["GET"]),
              Route("/v2/health/ready", handle(ready), methods=["GET"])]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [Route(prefix, handle(model_metadata), methods=["GET"]),
                   Route(prefix + "/ready", handle(model_ready), methods=["GET"]),
                   Route(prefix + "/infer", handle(infer), methods=["POST"])]
    return Starlette(routes=routes)
