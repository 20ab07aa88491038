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
# "livemax": one series per model across worker processes (the default, "all", adds a pid label, so every
# restart of a worker would start a new series and a dashboard would count each as another model)
MODEL_INFO = bentoml.metrics.Gauge(name="rca_model_info", documentation="the model being served (value 1)",
                                   labelnames=["name", "version"], multiprocess_mode="livemax")
REJECTED = bentoml.metrics.Counter(
    name="rca_rejected_requests", documentation="requests refused before any work (auth, limits, bad JSON), by status",
    labelnames=["status"])


def request(endpoint: str, mode: str, status: int) -> None:
    REQUESTS.labels(endpoint=endpoint, mode=mode, status=str(status)).inc()


def rejected(status: int) -> None:
    REJECTED.labels(status=str(status)).inc()


def model_loaded(name: str, version: str) -> None:
    MODEL_INFO.labels(name=name, version=str(version)).set(1)
