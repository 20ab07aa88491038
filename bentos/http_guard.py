"""The HTTP front door, as ASGI middleware: bearer-token auth, body-size and line-count limits, JSON and schema
validation. Everything it refuses gets a 4xx with a JSON message before any work is done; health and metrics
endpoints stay open for probes and Prometheus.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Callable

from pydantic import ValidationError

from . import metrics
from .http_errors import REQUEST_ID, RETRY_AFTER_S, body, request_id_from, status_for
from .schemas import ROUTES
from .settings import ServeSettings

# An over-limit body is read and thrown away (up to this much) before the 413, so a client that sends its whole
# body before reading the answer (most do) gets the message instead of a broken pipe; beyond it, the connection
# is dropped.
DRAIN_CAP = 256 * 1024 * 1024
OPEN_PATHS = frozenset({"/livez", "/readyz", "/healthz", "/metrics", "/v2/health/live", "/v2/health/ready"})
"""The only paths answered without the token (probes, Prometheus, KServe's v2 probes): exact matches, everything
else needs it."""
MAX_JSON_DEPTH = 64
MAX_NUMBER_CHARS = 64


class _Refused(ValueError):
    pass


async def _drain(receive: Callable, cap: int) -> None:
    seen = 0
    while seen <= cap:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        seen += len(msg.get("body", b""))
        if not msg.get("more_body"):
            return


async def _send_json(send: Callable, status: int, message: str, extra: list | None = None,
                     more: dict | None = None) -> None:
    if status >= 400:
        metrics.rejected(status)
    data = json.dumps({**body(message), **(more or {})}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": data})


def _number(kind: Callable) -> Callable[[str], Any]:
    def parse(text: str):
        if len(text) > MAX_NUMBER_CHARS:
            raise _Refused(f"a number of {len(text):,} characters (the limit is {MAX_NUMBER_CHARS})")
        return kind(text)
    return parse


def _constant(name: str):
    raise _Refused(f"{name} is not JSON")


def parse_json(raw: bytes) -> Any:
    """Strict JSON for a request body: UTF-8 only, at most MAX_JSON_DEPTH levels, numbers of at most
    MAX_NUMBER_CHARS characters, no NaN/Infinity, no lone surrogates. Raises ValueError with the reason."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _Refused(f"not UTF-8 (byte {exc.start})") from None
    try:
        data = json.loads(text or "null", parse_int=_number(int), parse_float=_number(float),
                          parse_constant=_constant)
    except RecursionError:
        raise _Refused(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise _Refused(str(exc)) from None
    stack = [(data, 1)]
    while stack:  # iterative: depth and strings checked without recursion
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise _Refused(f"nested deeper than {MAX_JSON_DEPTH} levels")
            items = node.items() if isinstance(node, dict) else ((None, v) for v in node)
            for k, v in items:
                if k is not None:
                    _utf8(k)
                stack.append((v, depth + 1))
        elif isinstance(node, str):
            _utf8(node)
    return data


def _utf8(text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _Refused("a string holds a lone surrogate (\\ud800-\\udfff): not text") from None


class HTTPGuard:
    """``get_routes`` maps a path to a no-argument callable answering GET with JSON (BentoML APIs are POST-only;
    ``GET /model`` is what operators and probes expect). Every request gets a request id (the caller's sane
    ``X-Request-ID`` or a fresh one), echoed in the answer's ``X-Request-ID`` and put in its log lines."""

    def __init__(self, app, settings: ServeSettings | None = None,
                 get_routes: dict[str, Callable[[], dict]] | None = None):
        self.app = app
        self.settings = settings or ServeSettings.from_env()
        self._token = self.settings.api_token.encode()
        self.get_routes = get_routes or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = request_id_from(headers.get(b"x-request-id"))
        token = REQUEST_ID.set(rid)

        async def send_with_id(msg):
            if msg["type"] == "http.response.start":
                msg = {**msg, "headers": [*msg.get("headers", []), (b"x-request-id", rid.encode())]}
            await send(msg)

        try:
            return await self._guard(scope, receive, send_with_id, headers)
        finally:
            REQUEST_ID.reset(token)

    async def _guard(self, scope, receive, send, headers):
        path = scope.get("path", "")
        if self._token and path not in OPEN_PATHS:
            auth = headers.get(b"authorization", b"")
            given = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(given, self._token):
                await _drain(receive, self.settings.max_body_bytes)
                return await _send_json(send, 401, "missing or invalid bearer token (set Authorization: "
                                                   "Bearer <RCA_API_TOKEN>)", [(b"www-authenticate", b"Bearer")])
        method = scope.get("method")
        if method == "GET" and path in self.get_routes:
            try:
                return await _send_json_ok(send, self.get_routes[path]())
            except Exception as exc:  # noqa: BLE001 - e.g. no model yet
                status, message, extra = status_for(exc)
                if status == 500:
                    status, message, extra = 503, f"not ready: {message}", {"Retry-After": str(RETRY_AFTER_S)}
                return await _send_json(send, status, message,
                                        [(k.lower().encode(), v.encode()) for k, v in extra.items()])
        if method in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)

        # every other request (any route, BentoML's own included) is read under the body limit
        limit = self.settings.max_body_bytes
        declared = headers.get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await _drain(receive, DRAIN_CAP)
            return await _send_json(send, 413, f"request body is {int(declared):,} bytes; the limit is "
                                               f"{limit:,} (RCA_SERVE_MAX_BODY_BYTES)")
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                if msg.get("more_body"):
                    await _drain(receive, DRAIN_CAP)
                return await _send_json(send, 413, f"request body over {limit:,} bytes (RCA_SERVE_MAX_BODY_BYTES)")
            chunks.append(chunk)
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        model = ROUTES.get(path)
        if model is not None:
            refused = self._check(path, model, raw)
            if refused is not None:
                return await _send_json(send, *refused[:2], more=refused[2])
        elif path.startswith("/v2/") and path.endswith("/infer"):
            from .oip import rest  # OIP v2 infer: JSON or binary tensors, under the /score line limit

            if rest.INFER_PATH.fullmatch(path):
                refused = rest.precheck(raw, headers.get(rest.HEADER_LENGTH.encode()), self.settings.max_score_lines,
                                        path)
                if refused is not None:
                    return await _send_json(send, *refused)
        elif raw:
            try:
                parse_json(raw)  # BentoML's own routes: the same JSON rules, so nothing odd reaches its parser
            except ValueError as exc:
                return await _send_json(send, 422, f"request body is not valid JSON: {exc}")
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    def _check(self, path: str, model, raw: bytes) -> tuple[int, str, dict] | None:
        try:
            data = parse_json(raw)
        except ValueError as exc:
            return 422, f"request body is not valid JSON: {exc}", {}
        try:
            req = model.model_validate(data)
        except ValidationError as exc:
            detail = [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors(include_input=False,
                                                                                              include_context=False)]
            first = detail[0] if detail else {"loc": "", "msg": "invalid"}
            return 422, f"invalid request: {first['loc'] or 'body'}: {first['msg']}", {"detail": detail}
        lines = _line_count(req)
        cap = self.settings.max_score_lines if path == "/score" else self.settings.max_analyze_lines
        if lines > cap:
            return 413, (f"{lines:,} log lines in one request; the limit for {path} is {cap:,} (ingest larger logs "
                         "as a corpus with /ingest or rca ingest)"), {}
        return None


async def _send_json_ok(send: Callable, payload: dict) -> None:
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _lines_in(text: str) -> int:
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def _line_count(req) -> int:
    """Lines as the parser will see them: every newline counts, inside a ``lines`` item as in ``logs``."""
    if hasattr(req, "lines"):
        return sum(max(1, _lines_in(item)) for item in req.lines)
    return _lines_in(getattr(req, "logs", None) or "")
