"""A token-checking reverse proxy in front of Chroma.

Every request must carry ``Authorization: Bearer <token>`` or ``X-Chroma-Token: <token>`` (what the Chroma
clients send); the heartbeat and version endpoints stay open for probes. Compared in constant time; the token is
never logged. Standard library only, so it runs in the same image as Chroma.
"""

from __future__ import annotations

import hmac
import http.client
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)
OPEN_PATHS = ("/api/v2/heartbeat", "/api/v2/version", "/api/v1/heartbeat", "/api/v2/healthcheck")
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
              "transfer-encoding", "upgrade", "host", "content-length"}
MAX_BODY = 256 * 1024 * 1024


def _token_of(headers) -> str:
    auth = headers.get("Authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return headers.get("X-Chroma-Token", "").strip()


class TokenProxy:
    """``TokenProxy(token, upstream_port).serve(host, port)``; ``start()`` runs it on a background thread."""

    def __init__(self, token: str, upstream_port: int, upstream_host: str = "127.0.0.1", *, timeout: float = 60):
        if not token:
            raise ValueError("TokenProxy needs a non-empty token")
        self.token = token.encode()
        self.upstream = (upstream_host, upstream_port)
        self.timeout = timeout
        self.server: ThreadingHTTPServer | None = None

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):  # the default logs to stderr; requests carry no secrets, but be quiet
                log.debug("%s %s", self.address_string(), fmt % args)

            def _reply(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _forward(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in OPEN_PATHS and not hmac.compare_digest(_token_of(self.headers).encode(), proxy.token):
                    self._reply(401, {"error": "Unauthorized", "message": "a valid Chroma token is required"})
                    return
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY:
                    self._reply(413, {"error": "PayloadTooLarge", "message": f"request body over {MAX_BODY} bytes"})
                    return
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in HOP_BY_HOP and k.lower() not in ("authorization", "x-chroma-token")}
                conn = http.client.HTTPConnection(*proxy.upstream, timeout=proxy.timeout)
                try:
                    conn.request(self.command, self.path, body=body, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                except OSError as exc:
                    self._reply(502, {"error": "BadGateway", "message": f"Chroma is unreachable: {type(exc).__name__}"})
                    return
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _forward

        return Handler

    def bind(self, host: str, port: int) -> int:
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        return self.server.server_address[1]

    def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        bound = self.bind(host, port)
        threading.Thread(target=self.server.serve_forever, name="chroma-token-proxy", daemon=True).start()
        return bound

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
