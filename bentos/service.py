"""The BentoML services: ``bentoml serve`` (from the repository root, via bentofile.yaml) starts all three.

* ``Scorer``: the LSTM runner. Loads the model through the one registry loader (MLflow alias, local fallback),
  scores log lines with adaptive batching (``/score`` traffic from many clients shares LSTM passes), scores whole
  tables for ``/analyze`` and ``/ingest``, and serves the Open Inference Protocol v2 over gRPC on its own port.
* ``Narrator``: the Claude narrator (the only holder of ANTHROPIC_API_KEY), with the offline fallback.
* ``RCA``: the entry service: ``/analyze``, ``/score``, ``/ingest``, ``/model`` and the OIP v2 REST routes
  (``/v2/...``); parse, retrieve and diagnose run here, scoring and narration are delegated, so a cluster scales
  the three apart.

The scorer can also run on its own (``bentoml serve bentos.service:Scorer``, its own pods in the Helm chart):
with ``RCA_SCORER_URL`` set, the entry reaches it over HTTP instead of starting it.

The shells stay thin: every answer comes from ``openstack_rca.analyze.Analyzer``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from typing import Any

import bentoml

from openstack_rca import registry
from openstack_rca.analyze import Analyzer
from openstack_rca.config import load
from openstack_rca.errors import DependencyDown, redact

from . import arrow_wire, metrics, observability
from .bearer_auth import BearerOnly
from .http_errors import error_response, install_log_filter
from .http_guard import HTTPGuard
from .oip import rest as oip_rest
from .oip.tensors import OIPModel
from .settings import ServeSettings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
log = logging.getLogger("openstack_rca.serve")
SETTINGS = ServeSettings.from_env()
TRACING = observability.tracing_config()  # {} = off; RCA_OTLP_ENDPOINT: spans to an OTLP/gRPC collector
if sys.argv[1:2] != ["build"]:  # `bentoml build` imports this module too, and serves nothing
    SETTINGS.check()  # no token and no RCA_ALLOW_ANONYMOUS=1: `bentoml serve` exits with the reason, before workers


_STATE: dict[str, Any] = {}  # the entry service instance, for the GET routes the guard answers


def _model_info() -> dict:
    svc = _STATE.get("rca")
    if svc is None:
        raise registry.ModelNotReady("service starting")
    return svc.model_info()


def _corpora() -> dict:
    from openstack_rca import corpus

    svc = _STATE.get("rca")
    if svc is None:
        raise registry.ModelNotReady("service starting")
    return corpus.listing(svc.cfg)  # {"corpora": [...], "skipped": [{"name", "error"}]}


def _need_model(loaded: Any) -> None:
    """No model at start: answer 503 at once (never load in the request path)."""
    if loaded is None:
        raise registry.ModelNotReady("no model loaded; run `rca train` and restart the service")


def _freeze_heap() -> None:
    """Collect once, then keep everything start-up allocated (modules, the model) out of later collections:
    otherwise the first sizeable request pays for a full collection over all of it (~100 ms seen here)."""
    import gc

    gc.collect()
    gc.freeze()


# Callers keep their connection to the scorer: BentoML's client otherwise recycles it every 100 requests,
# cutting the calls in flight (seen as bursts of 503s under load).
RUNNER_CONNECTION = {"max_requests": 1_000_000, "max_age": 3600.0}


@bentoml.service(name="rca-scorer", workers=1, traffic={"timeout": 300}, runner_connection=RUNNER_CONNECTION,
                 tracing=TRACING)
class Scorer:
    """The LSTM runner."""

    def __init__(self) -> None:
        observability.setup_process()
        self.cfg = load()
        self.analyzer = Analyzer(self.cfg)
        self.grpc = None
        try:
            self.loaded = self.analyzer.model
        except registry.ModelNotReady as exc:  # serve anyway: /readyz 503, calls 503 at once, no restart loop
            log.error("scorer: %s", redact(exc, self.cfg.home))
            self.loaded = None
            return
        metrics.model_loaded(self.loaded.name, self.loaded.version)
        from openstack_rca.warmup import incident_text

        self.analyzer.score_documents([incident_text()])  # the first pass pays for kernels and caches: not a caller
        _freeze_heap()
        if SETTINGS.grpc_enabled:
            self.grpc = _start_grpc(self.analyzer, self.loaded, SETTINGS)

    def __is_ready__(self) -> bool:
        return self.loaded is not None

    @bentoml.api(batchable=SETTINGS.batching, max_batch_size=SETTINGS.max_batch_size,
                 max_latency_ms=SETTINGS.max_latency_ms)
    def score_documents(self, documents: list[str]) -> list[dict]:
        """One element per request's log text; requests that arrive together share one LSTM pass."""
        metrics.BATCH_SIZE.observe(len(documents))
        _need_model(self.loaded)
        return self.analyzer.score_documents(documents)

    @bentoml.api
    def score_table(self, table: str) -> str:
        """A whole parsed table (Arrow IPC, base64) -> its per-record scores (same encoding)."""
        _need_model(self.loaded)
        scores = self.loaded.bundle.score(arrow_wire.loads(table))
        return arrow_wire.dumps(scores)

    @bentoml.api
    def model_info(self) -> dict:
        _need_model(self.loaded)
        m = self.loaded
        return {"name": m.name, "version": m.version, "alias": m.alias, "source": m.source, "loaded_at": m.loaded_at}


@bentoml.service(name="rca-narrator", workers=1, traffic={"timeout": 120}, runner_connection=RUNNER_CONNECTION,
                 tracing=TRACING)
class Narrator:
    """Claude, or the offline narrative; holds the only copy of the API key."""

    def __init__(self) -> None:
        observability.setup_process()
        from openstack_rca.narrate import ClaudeNarrator

        self.narrator = ClaudeNarrator(load().narrative)
        if self.narrator.available:
            self.narrator._get_client()  # the SDK import, at start rather than in the first request

    @bentoml.api
    def narrate(self, report: dict) -> dict:
        return self.narrator.narrate(report)

    @bentoml.api
    def ping(self) -> dict:
        """What the entry's warm-up calls: opens the connection without asking Claude anything."""
        return {"claude": self.narrator.available}


class _RemoteNarrator:
    def __init__(self, service) -> None:
        self.service = service

    def narrate(self, report: dict, on_text=None) -> dict:
        try:
            return self.service.narrate(report=report)
        except Exception as exc:  # noqa: BLE001 - the narrator service down must not lose the report
            from openstack_rca.narrate.offline import offline_narrative

            out = offline_narrative(report)
            out["warning"] = f"narrator service unavailable ({type(exc).__name__})"
            return out


# threads: the entry's endpoints are synchronous and BentoML runs them on `threads` threads (default 1); with
# one, requests reach the scorer one at a time and adaptive batching never forms a batch.
# runner_probe off: BentoML's own probe waits up to its timeout on a hung scorer; __is_ready__ asks it instead,
# bounded, so /readyz answers within a second whatever the scorer's state.
@bentoml.service(name="openstack-rca", traffic={"timeout": 300}, http={"port": 3000}, threads=SETTINGS.threads,
                 runner_probe={"enabled": False, "timeout": 1, "period": 10}, tracing=TRACING)
class RCA:
    # RCA_SCORER_URL: the scorer runs apart (its own `bentoml serve bentos.service:Scorer`), reached over HTTP;
    # unset, `bentoml serve` starts it beside the entry. Either way the calls below are the same.
    scorer = bentoml.depends(Scorer, url=SETTINGS.scorer_url or None)
    narrator = bentoml.depends(Narrator)

    def __init__(self) -> None:
        observability.setup_process()  # stage spans under BentoML's request spans; JSON logs if asked
        install_log_filter()  # every log line written for a request carries its request id
        self.cfg = load()
        from openstack_rca import corpus

        corpus.cleanup(self.cfg)  # what writers killed mid-ingest left behind (corpora being written: skipped)
        _authorize(self.scorer, SETTINGS.api_token)  # the scorer answers token holders only (BearerOnly)
        _authorize(self.narrator, SETTINGS.api_token)  # so does the narrator, which spends the Claude key
        self.analyzer = Analyzer(self.cfg, scorer=self._remote_score, narrator=_RemoteNarrator(self.narrator))
        self.loaded_at = None
        self.started = time.monotonic()
        self.warm: dict[str, Any] | None = None
        try:
            self.analyzer.model  # the same loader as the scorer: vocabulary and counts for diagnosis
            self.loaded_at = time.time()
        except registry.ModelNotReady as exc:
            log.error("no model yet (%s); /readyz stays 503 until one is trained and the service restarts",
                      redact(exc, self.cfg.home))
        self.oip = None if self.loaded_at is None else OIPModel(
            self._score_lines, self.analyzer.model.name, model_version_fn=lambda: self.analyzer.model.version,
            ready_fn=lambda: self.warm is not None, max_lines=SETTINGS.max_score_lines)
        _STATE["rca"] = self
        self._warm_task = None

    @bentoml.on_startup
    async def begin_warm_up(self) -> None:
        """Start the warm-up once the event loop runs: the scorer is called synchronously, and BentoML's sync
        client must be called from a thread the loop started (anyio), not from a thread of our own."""
        if self.loaded_at is not None:
            import anyio

            self._warm_task = asyncio.get_running_loop().create_task(anyio.to_thread.run_sync(self._warm_up))

    def _warm_up(self) -> None:
        """One whole analysis (parse, remote scorer, embeddings, diagnosis) before /readyz says ready. The scorer
        may still be starting: retry until it answers, then ready whatever the outcome (a failure is logged and
        the first request pays instead)."""
        from openstack_rca.warmup import warm_up

        deadline, last, warm = time.monotonic() + SETTINGS.warm_up_timeout_s, None, None
        while time.monotonic() < deadline:
            try:
                warm = warm_up(self.analyzer, mode=self.cfg.analyze.mode)
                self.narrator.ping()
                break
            except Exception as exc:  # noqa: BLE001 - the scorer not up yet: try again shortly
                last = exc
                time.sleep(0.5)
        else:
            log.error("warm-up did not complete in %ss (%s); serving cold", SETTINGS.warm_up_timeout_s,
                      type(last).__name__ if last else "timeout")
            warm = {"error": type(last).__name__ if last else "timeout"}
        warm["ready_after_s"] = round(time.monotonic() - self.started, 2)
        _freeze_heap()
        log.info("ready: warm-up %s", warm)
        self.warm = warm

    def _score_lines(self, lines: list[str]) -> dict:
        """One request's lines through the scorer (batched with other requests'): /score and OIP v2 infer."""
        try:
            return self.scorer.score_documents(["\n".join(lines)])[0]
        except Exception as exc:  # noqa: BLE001 - the scorer's own message stays in its log: 503, retry
            raise DependencyDown(f"scorer unavailable ({type(exc).__name__})") from None

    def _remote_score(self, table):
        wire = arrow_wire.dumps(arrow_wire.for_scoring(table))
        try:
            scored = self.scorer.score_table(table=wire)
        except Exception as exc:  # noqa: BLE001 - the scorer's own message stays in its log: 503, retry
            raise DependencyDown(f"scorer unavailable ({type(exc).__name__})") from None
        return arrow_wire.loads(scored)

    async def __is_ready__(self) -> bool:
        if self.loaded_at is None or self.warm is None:
            return False
        probe = getattr(self.scorer, "is_ready", None)  # a remote scorer (a local one is ready with us)
        if probe is None or not asyncio.iscoroutinefunction(probe):
            return True
        try:
            return bool(await asyncio.wait_for(probe(1), timeout=0.8))
        except Exception:  # noqa: BLE001 - down, hung or refusing: not ready
            return False

    @bentoml.api(route="/analyze")
    def analyze(self, issue: str, logs: str | None = None, corpus: str | None = None, mode: str | None = None,
                top_k: int | None = None, narrate: bool = True) -> Any:
        """Issue + log text (or an ingested corpus) -> the RCA report."""
        t0 = time.perf_counter()
        mode_label = mode or self.cfg.analyze.mode
        try:
            _need_model(self.loaded_at)
            rep = self.analyzer.analyze(issue, text=logs, corpus=corpus, mode=mode, top_k=top_k, narrate=narrate)
        except Exception as exc:  # noqa: BLE001 - one mapping to a status, a generic 500 for the unexpected
            return self._fail("analyze", mode_label, exc)
        metrics.request("analyze", rep["mode"], 200)
        metrics.ANALYZE_SECONDS.labels(mode=rep["mode"]).observe(time.perf_counter() - t0)
        return rep

    @bentoml.api(route="/score")
    def score(self, lines: list[str]) -> Any:
        """Log lines -> per-record template id, anomaly score and importance (batched across requests)."""
        try:
            _need_model(self.loaded_at)
        except registry.ModelNotReady as exc:
            return self._fail("score", "-", exc)
        try:
            out = self._score_lines(lines)
        except DependencyDown as exc:
            return self._fail("score", "-", exc)
        metrics.request("score", "-", 200)
        m = self.analyzer.model
        return {"model": {"name": m.name, "version": m.version}, **out}

    @bentoml.api(route="/ingest")
    def ingest(self, corpus: str, logs: str, index: bool = True) -> Any:
        """Log text -> a named corpus (parsed, scored, indexed) that /analyze can then query by name."""
        try:
            _need_model(self.loaded_at)
            res = self.analyzer.ingest(None, corpus, text=logs, index=index)
        except Exception as exc:  # noqa: BLE001 - one mapping to a status, a generic 500 for the unexpected
            return self._fail("ingest", "-", exc)
        metrics.request("ingest", "-", 200)
        return res

    @bentoml.api(route="/model")
    def model(self) -> Any:
        """The model this service answers with (also ``GET /model``)."""
        try:
            return self.model_info()
        except Exception as exc:  # noqa: BLE001
            return self._fail("model", "-", exc)

    @staticmethod
    def _fail(endpoint: str, mode: str, exc: BaseException):
        resp = error_response(exc, endpoint)
        metrics.request(endpoint, mode, resp.status_code)
        return resp

    def model_info(self) -> dict:
        _need_model(self.loaded_at)
        m = self.analyzer.model
        return {"name": m.name, "version": m.version, "alias": m.alias, "source": m.source,
                "loaded_at": m.loaded_at, "load_ms": m.load_ms, "warm_up": self.warm}


async def _oip_ready() -> bool:
    svc = _STATE.get("rca")
    return svc is not None and await svc.__is_ready__()


def _authorize(client: Any, token: str) -> None:
    """Send the bearer token on every call of a BentoML remote client (beside the entry or at RCA_SCORER_URL).
    The sync client wraps the async one, whose sessions are made, on first use, with its ``default_headers``
    (the same dict): so this runs before any call. A scorer in this process (no client) needs nothing."""
    http = getattr(client, "to_async", None)
    headers = getattr(http, "default_headers", None)
    if token and isinstance(headers, dict):
        headers["Authorization"] = f"Bearer {token}"


Scorer.add_asgi_middleware(BearerOnly, token=SETTINGS.api_token)
Narrator.add_asgi_middleware(BearerOnly, token=SETTINGS.api_token)
RCA.add_asgi_middleware(HTTPGuard, settings=SETTINGS, get_routes={"/model": _model_info, "/corpora": _corpora})
RCA.mount_asgi_app(oip_rest.build_app(lambda: getattr(_STATE.get("rca"), "oip", None), _oip_ready), path="/")


def _start_grpc(analyzer: Analyzer, loaded, settings: ServeSettings):
    """The OIP v2 gRPC server, in the scorer's process (where the model is), on its own port."""
    try:
        from .oip.server import ScorerServicer, start_server
    except ImportError as exc:
        log.error("gRPC disabled: %s", exc)
        return None
    import threading

    lock = threading.Lock()  # gRPC calls arrive on a thread pool; the LSTM takes them one at a time

    def score(lines: list[str]) -> dict:
        with lock:
            return analyzer.score_documents(["\n".join(lines)])[0]

    servicer = ScorerServicer(
        score_fn=score,
        model_name=loaded.name, model_version_fn=lambda: loaded.version, ready_fn=lambda: True,
        max_lines=settings.max_score_lines)
    try:
        return start_server(servicer, host=settings.grpc_bind, port=settings.grpc_port,
                            token=settings.api_token or None, max_message_bytes=settings.max_body_bytes)
    except Exception as exc:  # noqa: BLE001 - HTTP keeps serving; the log says why gRPC did not start
        log.error("gRPC server could not start on port %s: %s", settings.grpc_port, exc)
        return None
