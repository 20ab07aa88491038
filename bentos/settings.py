"""Serving settings, from the environment (the Helm chart's ConfigMap and Secrets set these).

Secrets (``RCA_API_TOKEN``) are read here and nowhere else, and never logged.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from urllib.parse import urlsplit


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer (got {raw!r})") from None


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


def served_host() -> str:
    """The host ``bentoml serve --host`` bound the HTTP port to, as every worker process learns it.

    BentoML passes it to the workers (the scorer's included) only inside ``BENTOML_RUNNER_MAP``: the served
    service's entry is its ``http(s)://host:port`` (dependencies are ``tcp://``/``unix://``), with ``localhost``
    standing for 0.0.0.0 and ``::``. '' when not under ``bentoml serve``.
    """
    try:
        mapping = json.loads(os.environ.get("BENTOML_RUNNER_MAP") or "{}")
    except ValueError:
        return ""
    for url in mapping.values() if isinstance(mapping, dict) else ():
        parts = urlsplit(str(url))
        if parts.scheme in ("http", "https") and parts.hostname:
            return "0.0.0.0" if parts.hostname == "localhost" else parts.hostname
    return ""


@dataclass(frozen=True)
class ServeSettings:
    api_token: str = ""
    allow_anonymous: bool = False
    """RCA_ALLOW_ANONYMOUS=1: serve without a token on purpose (a laptop, a test); otherwise no token = no start."""
    grpc_host: str = ""
    """RCA_GRPC_HOST; '' = the host `bentoml serve --host` bound HTTP to, with a token; 127.0.0.1 when anonymous
    (never an open port on the network)."""
    serve_host: str = ""
    """What `bentoml serve --host` was given (``served_host``); '' outside `bentoml serve` (then 0.0.0.0)."""
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
    scorer_url: str = ""
    """RCA_SCORER_URL: the scorer served apart (`bentoml serve bentos.service:Scorer`, its own pods), e.g.
    http://openstack-rca-scorer:3000; '' = `bentoml serve` starts the scorer beside the entry."""

    @classmethod
    def from_env(cls) -> "ServeSettings":
        return cls(
            api_token=os.environ.get("RCA_API_TOKEN", ""),
            allow_anonymous=_bool("RCA_ALLOW_ANONYMOUS", cls.allow_anonymous),
            grpc_host=os.environ.get("RCA_GRPC_HOST", "").strip(),
            serve_host=served_host(),
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
            scorer_url=os.environ.get("RCA_SCORER_URL", "").strip().rstrip("/"),
        )

    def check(self) -> None:
        """Secure by default: no token and no explicit RCA_ALLOW_ANONYMOUS=1 -> refuse to start."""
        if not self.api_token and not self.allow_anonymous:
            raise SystemExit("refusing to start: RCA_API_TOKEN is not set (set it, or RCA_ALLOW_ANONYMOUS=1 to serve "
                             "without authentication on purpose)")
        if self.scorer_url:
            parts = urlsplit(self.scorer_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise SystemExit(f"RCA_SCORER_URL must be the scorer's base URL, http(s)://host:port (got "
                                 f"{self.scorer_url!r}); unset it to run the scorer beside the entry")

    @property
    def grpc_bind(self) -> str:
        return self.grpc_host or ((self.serve_host or "0.0.0.0") if self.api_token else "127.0.0.1")
