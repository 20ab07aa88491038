"""Bearer-token auth for the scorer's HTTP port: only the token's holders (the entry) may score.

The scorer's own calls carry BentoML's encodings (pickle between local processes), so, unlike the entry's
``HTTPGuard``, this checks the ``Authorization`` header only and never reads a body. Probes and metrics stay open.
"""

from __future__ import annotations

import hmac

from .http_guard import OPEN_PATHS, _drain, _send_json


class BearerOnly:
    """ASGI middleware: 401 for any HTTP request but the open probes without ``Authorization: Bearer <token>``;
    with no token, everything passes (anonymous serving, on purpose)."""

    def __init__(self, app, token: str = ""):
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self._token or scope.get("path", "") in OPEN_PATHS:
            return await self.app(scope, receive, send)
        auth = dict(scope.get("headers") or []).get(b"authorization", b"")
        given = auth[7:].strip() if auth[:7].lower() == b"bearer " else b""
        if hmac.compare_digest(given, self._token):
            return await self.app(scope, receive, send)
        await _drain(receive, 1024 * 1024)
        return await _send_json(send, 401, "missing or invalid bearer token (the scorer answers the entry "
                                           "service only: Authorization: Bearer <RCA_API_TOKEN>)",
                                [(b"www-authenticate", b"Bearer")])
