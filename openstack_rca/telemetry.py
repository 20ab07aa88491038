"""Pipeline stages as timings and OpenTelemetry spans, and JSON logs on request.

Every stage of an analysis (parse, score, retrieve, diagnose, narrate; corpus, index on ingest) runs inside
``stage``: its wall time lands in the report's ``timings_ms`` and, when a tracer provider is installed (the
BentoML service installs the one its tracing configuration builds), in a span ``rca.<stage>`` under the request's
span. Without OpenTelemetry (the core install) it only times. ``configure_logging`` switches every handler to one
JSON object per line when ``RCA_LOG_FORMAT=json``, so a log pipeline (Fluent Bit, CloudWatch) needs no regex.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from typing import Any, Iterator

try:
    from opentelemetry import trace as _trace
except ImportError:  # the core install: time the stages, trace nothing
    _trace = None

TRACER_NAME = "openstack_rca"


@contextlib.contextmanager
def stage(name: str, timings: dict[str, float] | None = None, **attrs: Any) -> Iterator[Any]:
    """Time ``name`` into ``timings`` (milliseconds, one decimal) and trace it as span ``rca.<name>``."""
    t0 = time.perf_counter()
    if _trace is None:
        try:
            yield None
        finally:
            if timings is not None:
                timings[name] = round((time.perf_counter() - t0) * 1000, 1)
        return
    with _trace.get_tracer(TRACER_NAME).start_as_current_span(f"rca.{name}") as span:
        for k, v in attrs.items():
            if v is not None:
                span.set_attribute(f"rca.{k}", v)
        try:
            yield span
        finally:
            if timings is not None:
                timings[name] = round((time.perf_counter() - t0) * 1000, 1)


def install_tracer_provider(provider: Any) -> None:
    """Make ``provider`` the global one, so the library's spans join the server's request spans."""
    if _trace is not None and provider is not None:
        _trace.set_tracer_provider(provider)


class JSONFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the request/trace ids when there are."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname, "logger": record.name, "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid and rid != "-":
            out["request_id"] = rid
        if _trace is not None:
            ctx = _trace.get_current_span().get_span_context()
            if ctx.is_valid:
                out["trace_id"], out["span_id"] = f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}"
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)


JSONFormatter.converter = time.gmtime


def log_format(env: Any = None) -> str:
    env = os.environ if env is None else env
    fmt = (env.get("RCA_LOG_FORMAT") or "text").strip().lower()
    if fmt not in ("text", "json"):
        raise SystemExit(f"RCA_LOG_FORMAT must be text or json (got {fmt!r})")
    return fmt


def configure_logging(env: Any = None) -> bool:
    """With RCA_LOG_FORMAT=json, every handler that exists now (BentoML's included) writes JSON. -> switched?"""
    if log_format(env) != "json":
        return False
    fmt = JSONFormatter()
    loggers = [logging.getLogger()] + [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]
    for lg in loggers:
        for h in getattr(lg, "handlers", []):
            h.setFormatter(fmt)
    if not logging.getLogger().handlers:
        h = logging.StreamHandler()
        h.setFormatter(fmt)
        logging.getLogger().addHandler(h)
    return True
