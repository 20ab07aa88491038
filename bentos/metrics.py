"""RCA metrics on BentoML's /metrics (Prometheus): requests by endpoint/mode/status, analyze latency, batch
sizes, and the model version being served."""

from __future__ import annotations

import bentoml

REQUESTS = bentoml.metrics.Counter(name="rca_requests", documentation="RCA API requests",
                                   labelnames=["endpoint", "mode", "status"])
ANALYZE_SECONDS = bentoml.metrics.Histogram(
    name="rca_analyze_seconds", documentation="analyze latency (seconds), narrative included",
    labelnames=["mode"], buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0))
BATCH_SIZE = bentoml.metrics.Histogram(
    name="rca_score_batch_size", documentation="documents per scorer batch (adaptive batching)",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128))
MODEL_INFO = bentoml.metrics.Gauge(name="rca_model_info", documentation="the model being served (value 1)",
                                   labelnames=["name", "version"])


def request(endpoint: str, mode: str, status: int) -> None:
    REQUESTS.labels(endpoint=endpoint, mode=mode, status=str(status)).inc()


def model_loaded(name: str, version: str) -> None:
    MODEL_INFO.labels(name=name, version=str(version)).set(1)
