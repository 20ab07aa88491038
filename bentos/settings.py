"""Serving settings, from the environment (the Helm chart's ConfigMap and Secrets set these).

Secrets (``RCA_API_TOKEN``) are read here and nowhere else, and never logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer (got {raw!r})") from None


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ServeSettings:
    api_token: str = ""
    allow_anonymous: bool = False
    """RCA_ALLOW_ANONYMOUS=1: serve without a token on purpose (a laptop, a test); otherwise no token = no start."""
    grpc_host: str = ""
    """RCA_GRPC_HOST; '' = 0.0.0.0 with a token, 127.0.0.1 when anonymous (never an open port on the network)."""
    max_body_bytes: int = 32 * 1024 * 1024
    max_analyze_lines: int = 200_000
    max_score_lines: int = 10_000
    grpc_port: int = 8001
    grpc_enabled: bool = True
    batching: bool = True
    max_batch_size: int = 64
    max_latency_ms: int = 1000
    threads: int = 16
    warm_up_timeout_s: int = 120
    """How long the entry retries its start-up analysis while the scorer starts; then it serves cold."""

    @classmethod
    def from_env(cls) -> "ServeSettings":
        return cls(
            api_token=os.environ.get("RCA_API_TOKEN", ""),
            allow_anonymous=_bool("RCA_ALLOW_ANONYMOUS", cls.allow_anonymous),
            grpc_host=os.environ.get("RCA_GRPC_HOST", "").strip(),
            max_body_bytes=_int("RCA_SERVE_MAX_BODY_BYTES", cls.max_body_bytes),
            max_analyze_lines=_int("RCA_SERVE_MAX_ANALYZE_LINES", cls.max_analyze_lines),
            max_score_lines=_int("RCA_SERVE_MAX_SCORE_LINES", cls.max_score_lines),
            grpc_port=_int("RCA_GRPC_PORT", cls.grpc_port),
            grpc_enabled=_bool("RCA_GRPC_ENABLED", cls.grpc_enabled),
            batching=_bool("RCA_SERVE_BATCHING", cls.batching),
            max_batch_size=_int("RCA_SERVE_MAX_BATCH_SIZE", cls.max_batch_size),
            max_latency_ms=_int("RCA_SERVE_MAX_LATENCY_MS", cls.max_latency_ms),
            threads=_int("RCA_SERVE_THREADS", cls.threads),
            warm_up_timeout_s=_int("RCA_SERVE_WARM_UP_TIMEOUT_S", cls.warm_up_timeout_s),
        )

    def check(self) -> None:
        """Secure by default: no token and no explicit RCA_ALLOW_ANONYMOUS=1 -> refuse to start."""
        if not self.api_token and not self.allow_anonymous:
            raise SystemExit("refusing to start: RCA_API_TOKEN is not set (set it, or RCA_ALLOW_ANONYMOUS=1 to serve "
                             "without authentication on purpose)")

    @property
    def grpc_bind(self) -> str:
        return self.grpc_host or ("0.0.0.0" if self.api_token else "127.0.0.1")
