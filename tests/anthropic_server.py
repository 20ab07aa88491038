"""A small local server that speaks the Anthropic Messages API (``POST /v1/messages``), for tests that point the
real ``anthropic`` SDK at it through ``base_url``.

Non-streaming requests get a Messages API JSON body; ``"stream": true`` gets Server-Sent Events in the real
order (message_start, content_block_start, content_block_delta..., content_block_stop, message_delta,
message_stop). ``mode`` picks the behaviour:

- ``ok``: answer with ``reply_text``
- ``invented``: answer citing [E1] and an id the report does not hold, [E99]
- ``malformed``: HTTP 200 whose body is not a message (``malformed_body``; non-JSON when streaming)
- ``error500``: HTTP 500 with an API error body, every attempt
- ``slow``: sleep ``slow_s`` before answering (longer than the client's timeout)
- ``empty``: a message with an empty content list

Every request is recorded in ``requests`` (method, path, lower-cased headers, the credential it carried as
``api_key``, parsed JSON body).
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_REPLY = ("nova-compute failed to spawn the instance because the libvirt connection dropped [E1]. "
                 "The scheduler then retried on another host and gave up [E2].")
INVENTED_REPLY = ("The libvirt connection dropped on the compute host [E1]. "
                  "Neutron also lost its port binding [E99].")
MODES = ("ok", "malformed", "invented", "error500", "slow", "empty")


class AnthropicServer:
    """A Messages API stand-in on 127.0.0.1 (free port), served from a background thread.

    Use as a context manager, or call ``start()`` / ``stop()``.
    """

    def __init__(self, mode: str = "ok", reply_text: str = DEFAULT_REPLY, slow_s: float = 3.0,
                 chunk_words: int = 3):
        self.mode = mode
        self.reply_text = reply_text
        self.slow_s = slow_s
        self.chunk_words = chunk_words  # words per text_delta when streaming
        self.malformed_body = b'{"oops": true}'
        self.requests: list[dict[str, Any]] = []
        self.chunks_sent: list[str] = []  # the text_delta texts of the last streamed answer
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.chunks_sent = []

    def start(self) -> "AnthropicServer":
        owner = self

        class Handler(_Handler):
            server_owner = owner

        httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="anthropic-test-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes a handler sleeping in "slow" mode
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> "AnthropicServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- answers ---------------------------------------------------------------------------------------------
    def _text(self) -> str:
        return INVENTED_REPLY if self.mode == "invented" else self.reply_text

    def _record(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self.requests.append(entry)


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # a client that timed out and left: not news
        pass


def _credential(headers: dict[str, str]) -> str | None:
    """The key the client sent: ``x-api-key`` (the classic header) or ``Authorization: Bearer`` (what SDK 2.x
    sends for ``api_key=``)."""
    if headers.get("x-api-key"):
        return headers["x-api-key"]
    auth = headers.get("authorization", "")
    return auth[7:] if auth.lower().startswith("bearer ") else None


def _message(model: str, content: list[dict[str, Any]], in_tokens: int, out_tokens: int) -> dict[str, Any]:
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": "end_turn", "stop_sequence": None,
            "usage": {"input_tokens": in_tokens, "output_tokens": out_tokens}}


class _Handler(BaseHTTPRequestHandler):
    server_owner: AnthropicServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        owner = self.server_owner
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        headers = {k.lower(): v for k, v in self.headers.items()}
        owner._record({"method": "POST", "path": self.path, "headers": headers, "api_key": _credential(headers),
                       "body": body})
        if self.path.split("?")[0] != "/v1/messages" or not isinstance(body, dict):
            return self._json(404, {"type": "error", "error": {"type": "not_found_error", "message": self.path}})
        mode = owner.mode
        if mode == "slow":
            owner._stopping.wait(owner.slow_s)
            if owner._stopping.is_set():
                self.close_connection = True
                return
        if mode == "error500":
            return self._json(500, {"type": "error", "error": {"type": "api_error", "message": "boom"}},
                              {"retry-after-ms": "10"})  # the SDK honours it: retries stay fast
        model = body.get("model", "claude-test")
        in_tokens = len(json.dumps(body)) // 4
        if body.get("stream"):
            return self._stream(owner, mode, model, in_tokens)
        if mode == "malformed":
            return self._send(200, owner.malformed_body, "application/json")
        text = owner._text()
        content = [] if mode == "empty" else [{"type": "text", "text": text}]
        return self._json(200, _message(model, content, in_tokens, len(text.split()) if content else 0))

    # -- helpers ---------------------------------------------------------------------------------------------
    def _send(self, status: int, data: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json", headers)

    def _stream(self, owner: AnthropicServer, mode: str, model: str, in_tokens: int) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")  # no content-length: the body ends when the connection does
        self.end_headers()
        self.close_connection = True

        def event(name: str, data: Any) -> None:
            payload = data if isinstance(data, str) else json.dumps(data)
            self.wfile.write(f"event: {name}\ndata: {payload}\n\n".encode())
            self.wfile.flush()

        start = _message(model, [], in_tokens, 1)
        start.update(stop_reason=None)
        event("message_start", {"type": "message_start", "message": start})
        if mode == "malformed":
            event("content_block_start", "this is not json {")
            return
        text = "" if mode == "empty" else owner._text()
        words = text.split(" ")
        chunks = [" ".join(words[i:i + owner.chunk_words]) + (" " if i + owner.chunk_words < len(words) else "")
                  for i in range(0, len(words), owner.chunk_words)] if text else []
        owner.chunks_sent = chunks
        if mode != "empty":
            event("content_block_start", {"type": "content_block_start", "index": 0,
                                          "content_block": {"type": "text", "text": ""}})
            event("ping", {"type": "ping"})
            for c in chunks:
                event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                              "delta": {"type": "text_delta", "text": c}})
            event("content_block_stop", {"type": "content_block_stop", "index": 0})
        event("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                "usage": {"output_tokens": len(text.split())}})
        event("message_stop", {"type": "message_stop"})
