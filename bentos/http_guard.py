"""The HTTP front door, as ASGI middleware: bearer-token auth, body-size and line-count limits, JSON and schema
validation. Everything it refuses gets a 4xx with a JSON message before any work is done; health and metrics
endpoints stay open for probes and Prometheus.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Callable

from pydantic import ValidationError

from .schemas import ROUTES
from .settings import ServeSettings

# An over-limit body is read and thrown away (up to this much) before the 413, so a client that sends its whole
# body before reading the answer (most do) gets the message instead of a broken pipe; beyond it, the connection
# is dropped.
DRAIN_CAP = 256 * 1024 * 1024
OPEN_PATHS = ("/livez", "/readyz", "/healthz", "/metrics", "/docs", "/docs.json", "/schema.json")


async def _drain(receive: Callable, cap: int) -> None:
    seen = 0
    while seen <= cap:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return
        seen += len(msg.get("body", b""))
        if not msg.get("more_body"):
            return


async def _send_json(send: Callable, status: int, body: dict[str, Any], extra: list | None = None) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": data})


class HTTPGuard:
    """``get_routes`` maps a path to a no-argument callable answering GET with JSON (BentoML APIs are POST-only;
    ``GET /model`` is what operators and probes expect)."""

    def __init__(self, app, settings: ServeSettings | None = None,
                 get_routes: dict[str, Callable[[], dict]] | None = None):
        self.app = app
        self.settings = settings or ServeSettings.from_env()
        self._token = self.settings.api_token.encode()
        self.get_routes = get_routes or {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self._token and not path.startswith(OPEN_PATHS):
            auth = dict(scope.get("headers") or []).get(b"authorization", b"")
            given = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
            if not hmac.compare_digest(given, self._token):
                return await _send_json(send, 401, {"error": "missing or invalid bearer token (set Authorization: "
                                                             "Bearer <RCA_API_TOKEN>)"},
                                        [(b"www-authenticate", b"Bearer")])
        if scope.get("method") == "GET" and path in self.get_routes:
            try:
                return await _send_json(send, 200, self.get_routes[path]())
            except Exception as exc:  # noqa: BLE001 - e.g. no model yet
                return await _send_json(send, 503, {"error": f"not ready: {type(exc).__name__}: {exc}"})
        model = ROUTES.get(path)
        if model is None or scope.get("method") != "POST":
            return await self.app(scope, receive, send)

        limit = self.settings.max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared and declared.isdigit() and int(declared) > limit:
            await _drain(receive, DRAIN_CAP)
            return await _send_json(send, 413, {"error": f"request body is {int(declared):,} bytes; the limit is "
                                                         f"{limit:,} (RCA_SERVE_MAX_BODY_BYTES)"})
        chunks, size = [], 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > limit:
                if msg.get("more_body"):
                    await _drain(receive, DRAIN_CAP)
                return await _send_json(send, 413, {"error": f"request body over {limit:,} bytes "
                                                             "(RCA_SERVE_MAX_BODY_BYTES)"})
            chunks.append(body)
            if not msg.get("more_body"):
                break
        raw = b"".join(chunks)
        try:
            data = json.loads(raw or b"null")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return await _send_json(send, 422, {"error": f"request body is not valid JSON: {exc}"})
        try:
            req = model.model_validate(data)
        except ValidationError as exc:
            detail = [{"loc": ".".join(map(str, e["loc"])), "msg": e["msg"]} for e in exc.errors(include_input=False,
                                                                                              include_context=False)]
            first = detail[0] if detail else {"loc": "", "msg": "invalid"}
            return await _send_json(send, 422, {"error": f"invalid request: {first['loc'] or 'body'}: {first['msg']}",
                                                "detail": detail})
        lines = _line_count(req)
        cap = self.settings.max_score_lines if path == "/score" else self.settings.max_analyze_lines
        if lines > cap:
            return await _send_json(send, 413, {"error": f"{lines:,} log lines in one request; the limit for {path} "
                                                         f"is {cap:,} (ingest larger logs as a corpus with /ingest "
                                                         "or rca ingest)"})
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)


def _line_count(req) -> int:
    if hasattr(req, "lines"):
        return len(req.lines)
    text = getattr(req, "logs", None) or ""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)
