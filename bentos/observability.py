"""Tracing and log format of the served processes, from the environment (the chart's ConfigMap sets these).

Spans go out through BentoML's own tracing configuration (``@bentoml.service(tracing=...)``): its HTTP server
span per request, and the pipeline's ``rca.*`` stage spans (``openstack_rca.telemetry``) under it, once
``setup_process`` makes BentoML's tracer provider the global one. OTLP is the exporter an EKS cluster's collector
(ADOT, the OpenTelemetry Operator) receives; the standard ``OTEL_EXPORTER_OTLP_ENDPOINT`` works too.

* ``RCA_OTLP_ENDPOINT`` (or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_ENDPOINT``): the
  collector, e.g. ``http://otel-collector.observability:4317``; unset = no tracing.
  OTLP over gRPC (the exporter the image carries; the collector's port 4317).
* ``RCA_TRACE_SAMPLE_RATE``: share of requests traced, 0..1 (default 1.0 when an endpoint is set).
* ``RCA_LOG_FORMAT``: ``text`` (default) or ``json``.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from openstack_rca import telemetry


def tracing_config(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """BentoML's ``tracing`` service config for this environment ({} = tracing off)."""
    env = os.environ if env is None else env
    endpoint = (env.get("RCA_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if not endpoint:
        return {}
    raw = (env.get("RCA_TRACE_SAMPLE_RATE") or "1.0").strip()
    try:
        rate = float(raw)
    except ValueError:
        rate = -1.0
    if not 0.0 <= rate <= 1.0:
        raise SystemExit(f"RCA_TRACE_SAMPLE_RATE must be a number from 0 to 1 (got {raw!r})")
    otlp = {"protocol": "grpc", "endpoint": endpoint, "grpc": {"insecure": endpoint.startswith("http://")}}
    return {"exporter_type": "otlp", "sample_rate": rate, "otlp": otlp,
            "excluded_urls": ["/livez", "/readyz", "/healthz", "/metrics"]}


def setup_process() -> None:
    """In each worker process: library spans join BentoML's, and logs turn JSON when asked."""
    telemetry.configure_logging()
    try:
        from bentoml._internal.configuration.containers import BentoMLContainer
    except ImportError:
        return
    try:
        telemetry.install_tracer_provider(BentoMLContainer.tracer_provider.get())
    except Exception:  # noqa: BLE001 - tracing must never stop the service from serving
        pass
