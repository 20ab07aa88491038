"""Locust load test for the BentoML service (``bentoml serve`` from the repository root).

Two user kinds, weighted so that ``/score`` dominates (8:2 by default):

* ``ScoreUser`` -- machines: many small batches. POST /score with 20-200 *consecutive* lines from one service log
  of a simulated incident (random file, weighted by its length, random window).
* ``AnalyzeUser`` -- operators: POST /analyze with one of a few realistic issue texts against a corpus that the
  ``test_start`` hook ingests once (POST /ingest, index=true), alternating ``mode`` fast and hybrid (reported as
  separate rows "/analyze fast" and "/analyze hybrid"), and now and then GET /model.

Run it directly (``loadtests/run.py`` does all of this, and starts/stops the server for you)::

    locust -f loadtests/locustfile.py --headless -u 12 -r 4 -t 90s --host http://127.0.0.1:3000 --csv /tmp/lt
    locust -f loadtests/locustfile.py --headless -u 24 -r 8 -t 60s --host ... ScoreUser     # score traffic only

Environment:

* ``RCA_API_TOKEN``           bearer token, sent on every request when set
* ``RCA_LT_CORPUS``           corpus name the test ingests and /analyze queries (default ``loadtest``)
* ``RCA_LT_NARRATE``          ``narrate`` in /analyze bodies (default 1: the offline narrative, see README)
* ``RCA_LT_MEASURE_S``        if set: reset the stats once all users are spawned (plus ``RCA_LT_WARMUP_S``) and
                              quit that many seconds later, so that setup (simulate + ingest), ramp-up and
                              warm-up are not measured (``loadtests/run.py`` sets both; give ``-t`` generously,
                              it is only a backstop then: locust's own -t clock also counts setup and ramp-up)
* ``RCA_LT_REPORT_JSON``      write the ingest result and the measurement window there at quit
* ``RCA_LT_SCORE_FAULT`` / ``RCA_LT_INGEST_FAULT``   which simulated incidents to use (defaults below)

Every response is checked (status 200, JSON of the expected shape) and counted as a failure otherwise.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

import gevent
from locust import FastHttpUser, between, events, task
from locust.runners import MasterRunner, WorkerRunner

log = logging.getLogger("loadtests")

TOKEN = os.environ.get("RCA_API_TOKEN", "")
CORPUS = os.environ.get("RCA_LT_CORPUS", "loadtest")
NARRATE = os.environ.get("RCA_LT_NARRATE", "1").strip().lower() in ("1", "true", "yes", "on")
MEASURE_S = float(os.environ.get("RCA_LT_MEASURE_S", "0") or 0)
WARMUP_S = float(os.environ.get("RCA_LT_WARMUP_S", "0") or 0)
SCORE_FAULT = os.environ.get("RCA_LT_SCORE_FAULT", "cinder_volume_attach_failure")
SCORE_LINES, SCORE_SEED = 6000, 11
INGEST_FAULT = os.environ.get("RCA_LT_INGEST_FAULT", "rabbitmq_outage")
INGEST_LINES, INGEST_SEED = 5000, 7
WINDOW = (20, 200)

# What an operator types about the rabbitmq_outage corpus: three on the incident, a vague one, one about another
# symptom and an unrelated one; all go through the whole pipeline and must answer 200 (confidence is not checked).
ISSUES = [
    "instances stuck in BUILD since 09:40, nova-compute cannot reach the message queue",
    "nova boot times out: MessagingTimeout waiting for a reply from conductor",
    "AMQP server on controller is unreachable, compute services flapping",
    "new VMs fail to start, users report errors in Horizon",
    "volume attach hangs for instances on compute-2",
    "the office printer on floor 3 is out of toner",
]

HEADERS = {"Content-Type": "application/json"}
if TOKEN:
    HEADERS["Authorization"] = f"Bearer {TOKEN}"


class _Data:
    """The simulated logs, generated once per process at test start (in a temp dir removed at quit)."""

    tmp: str | None = None
    score_files: list[list[str]] = []
    score_weights: list[int] = []
    ingested: dict | None = None


def _simulate(fault: str, lines: int, seed: int) -> list[list[str]]:
    from openstack_rca.simulate import simulate

    if _Data.tmp is None:
        _Data.tmp = tempfile.mkdtemp(prefix="rca-loadtest-")
    out = Path(_Data.tmp) / f"{fault}-{seed}"
    truth = simulate(fault, out, lines=lines, seed=seed)
    return [(out / rel).read_text(encoding="utf-8").splitlines() for rel in truth["files"]]


def _wants(environment, cls) -> bool:
    return any(issubclass(c, cls) for c in (environment.user_classes or []))


@events.test_start.add_listener
def _setup(environment, **_kw):
    if isinstance(environment.runner, MasterRunner):
        return  # the workers generate their own request data; the master ingests (below)
    t0 = time.perf_counter()
    if _wants(environment, ScoreUser) and not _Data.score_files:
        files = [f for f in _simulate(SCORE_FAULT, SCORE_LINES, SCORE_SEED) if f]
        _Data.score_files, _Data.score_weights = files, [len(f) for f in files]
        log.info("score data: %s, %d files, %d lines (%.1f s)", SCORE_FAULT, len(files),
                 sum(_Data.score_weights), time.perf_counter() - t0)


@events.test_start.add_listener
def _ingest(environment, **_kw):
    """Ingest one simulated incident as corpus RCA_LT_CORPUS (once per test, by the master or the local runner).

    Then one unmeasured /analyze per mode. None of it is a row in the stats (it is setup, done once, before the
    users start); the timings go to the log and to RCA_LT_REPORT_JSON."""
    if isinstance(environment.runner, WorkerRunner) or not _wants(environment, AnalyzeUser):
        return
    import requests

    text = "".join(line + "\n" for f in _simulate(INGEST_FAULT, INGEST_LINES, INGEST_SEED) for line in f)
    body = {"corpus": CORPUS, "logs": text, "index": True}
    t0 = time.perf_counter()
    try:
        r = requests.post(environment.host.rstrip("/") + "/ingest", json=body, headers=HEADERS, timeout=900)
        if r.status_code != 200:
            raise RuntimeError(f"HTTP {r.status_code}: {r.text[:500]}")
        res = r.json()
    except Exception as exc:  # noqa: BLE001 - reported, and the test stops with exit code 2
        log.error("ingest of corpus %r failed (%s); stopping the test", CORPUS, exc)
        _REPORT["ingest"] = {"corpus": CORPUS, "error": str(exc)}
        environment.process_exit_code = 2
        gevent.spawn_later(0, environment.runner.quit)
        return
    secs = time.perf_counter() - t0
    _REPORT["ingest"] = {"corpus": CORPUS, "fault": INGEST_FAULT, "lines": res["input"]["lines"],
                         "records": res["input"]["records"], "indexed": res.get("indexed"),
                         "embedded": res.get("embedded"), "timings_ms": res.get("timings_ms"),
                         "wall_s": round(secs, 2), "warnings": res.get("warnings")}
    log.info("ingested corpus %r: %s lines, %s records, indexed=%s, embedded=%s, timings %s (%.1f s)", CORPUS,
             res["input"]["lines"], res["input"]["records"], res.get("indexed"), res.get("embedded"),
             res.get("timings_ms"), secs)
    # One unmeasured question per mode: a fresh server loads the embedding model on its first hybrid query (seconds
    # of CPU, during which the entry service answers nothing else); that is start-up cost, not steady-state load.
    warm = {}
    for mode in ("fast", "hybrid"):
        t1 = time.perf_counter()
        try:
            r = requests.post(environment.host.rstrip("/") + "/analyze", headers=HEADERS, timeout=900, json={
                "issue": ISSUES[0], "corpus": CORPUS, "mode": mode, "narrate": NARRATE})
            warm[mode] = {"status": r.status_code, "ms": round((time.perf_counter() - t1) * 1000, 1)}
        except Exception as exc:  # noqa: BLE001 - the measured requests will show it
            warm[mode] = {"error": str(exc)}
    _REPORT["ingest"]["first_analyze"] = warm
    log.info("first /analyze per mode (unmeasured): %s", warm)
    if not res.get("indexed"):
        log.warning("corpus %r has NO semantic index (%s): '/analyze hybrid' requests will count as failures, "
                    "since the service answers them in fast mode", CORPUS, res.get("warnings"))


_ENV: dict = {}
_REPORT: dict = {}


@events.init.add_listener
def _init(environment, **_kw):
    _ENV["env"] = environment


@events.spawning_complete.add_listener
def _measure(user_count, **_kw):
    """With RCA_LT_MEASURE_S: after the ramp-up and RCA_LT_WARMUP_S more seconds, reset the stats, measure exactly
    RCA_LT_MEASURE_S seconds, then quit."""
    env = _ENV.get("env")
    if not MEASURE_S or env is None or isinstance(env.runner, WorkerRunner) or "users" in _REPORT:
        return
    _REPORT["users"] = user_count
    _REPORT["user_classes"] = dict(env.runner.user_classes_count)

    def start():
        env.runner.stats.reset_all()
        _REPORT["window"] = [time.time(), None]
        log.info("all %d users running (%s), warm-up over: stats reset, measuring for %.0f s", user_count,
                 _REPORT["user_classes"], MEASURE_S)
        gevent.spawn_later(MEASURE_S, stop)

    def stop():
        _REPORT["window"][1] = time.time()
        log.info("measurement window over; quitting")
        env.runner.quit()

    gevent.spawn_later(WARMUP_S, start)


@events.quitting.add_listener
def _cleanup(environment, **_kw):
    if _Data.tmp:
        shutil.rmtree(_Data.tmp, ignore_errors=True)
        _Data.tmp = None
    path = os.environ.get("RCA_LT_REPORT_JSON")
    if path and not isinstance(environment.runner, WorkerRunner):
        _REPORT.update(narrate=NARRATE, corpus=CORPUS, score_fault=SCORE_FAULT, measure_s=MEASURE_S,
                       warmup_s=WARMUP_S)
        Path(path).write_text(json.dumps(_REPORT, indent=2) + "\n", encoding="utf-8")


def _check_json(resp, keys: tuple[str, ...]) -> dict | None:
    if resp.status_code != 200:
        resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:300]}")
        return None
    try:
        data = resp.json()
    except (ValueError, TypeError) as exc:
        resp.failure(f"not JSON: {exc}")
        return None
    missing = [k for k in keys if k not in data]
    if missing:
        resp.failure(f"response lacks {missing}")
        return None
    return data


class ScoreUser(FastHttpUser):
    """Log shippers / sidecars scoring small consecutive batches as they arrive."""

    weight = 8
    wait_time = between(0.1, 0.5)
    network_timeout = 120.0
    connection_timeout = 30.0

    @task
    def score(self):
        if not _Data.score_files:
            gevent.sleep(0.5)  # setup still running on this node
            return
        f = random.choices(_Data.score_files, weights=_Data.score_weights)[0]
        n = min(len(f), random.randint(*WINDOW))
        start = random.randint(0, len(f) - n)
        lines = f[start:start + n]
        with self.client.post("/score", data=json.dumps({"lines": lines}), headers=HEADERS, name="/score",
                              catch_response=True) as resp:
            data = _check_json(resp, ("records", "lines", "model"))
            if data is not None:
                if data["lines"].get("total") != n:
                    resp.failure(f"sent {n} lines, service counted {data['lines'].get('total')}")
                elif not data["records"]:
                    resp.failure("no records scored")
                else:
                    resp.success()


class AnalyzeUser(FastHttpUser):
    """Operators asking the RCA engine about an ingested incident; they read the answer before asking again."""

    weight = 2
    wait_time = between(1.0, 3.0)
    network_timeout = 300.0
    connection_timeout = 30.0

    def on_start(self):
        self._n = random.randrange(2)  # users start on different modes, then alternate

    @task(10)
    def analyze(self):
        mode = ("fast", "hybrid")[self._n % 2]
        self._n += 1
        body = {"issue": random.choice(ISSUES), "corpus": CORPUS, "mode": mode,
                "top_k": random.choice((5, 10)), "narrate": NARRATE}
        with self.client.post("/analyze", data=json.dumps(body), headers=HEADERS, name=f"/analyze {mode}",
                              catch_response=True) as resp:
            rep = _check_json(resp, ("root_cause", "mode", "evidence"))
            if rep is not None:
                if rep["mode"] != mode:
                    resp.failure(f"asked for mode {mode}, answered in {rep['mode']} ({rep.get('warnings')})")
                elif NARRATE and not rep.get("narrative"):
                    resp.failure("narrate=true but no narrative")
                else:
                    resp.success()

    @task(1)
    def model(self):
        with self.client.get("/model", headers=HEADERS, name="/model", catch_response=True) as resp:
            if _check_json(resp, ("name", "version")) is not None:
                resp.success()
