"""The scorer served apart: `bentoml serve bentos.service:Scorer` on its own port, the entry (`bentoml serve`)
wired to it by RCA_SCORER_URL, both real processes on loopback.

The entry answers /analyze, /score and OIP v2 infer exactly as the all-in-one service does for the same input;
the scorer alone serves its own OIP gRPC port and answers only the token's holder (the entry) over HTTP; once the
scorer is killed the entry's /readyz is 503 within a second, /score and infer 503 with Retry-After; and a bad
RCA_SCORER_URL stops `bentoml serve` with one line.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from openstack_rca import simulate

from openstack_rca.warmup import incident_text

from .serve_process import kill_tree, serve
from .test_service import BENTOML, ROOT, TOKEN, _free_port, call

MODEL = "openstack-rca-lstm"


def _env(cfg, tmp_path_factory, **extra) -> dict:
    env = {**os.environ, "RCA_HOME": str(cfg.home), "RCA_API_TOKEN": TOKEN, "RCA_NARRATIVE_ENABLED": "0",
           "BENTOML_HOME": str(tmp_path_factory.mktemp("bentoml-home")), "HF_HUB_OFFLINE": "1",
           "RCA_GRPC_PORT": str(_free_port()), **extra}
    for key in ("MLFLOW_TRACKING_URI", "RCA_GRPC_HOST", "ANTHROPIC_API_KEY", "RCA_SCORER_URL"):
        if key not in extra:
            env.pop(key, None)
    return env


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    d = tmp_path_factory.mktemp("apart-libvirt")
    truth = simulate.simulate("libvirt_domain_failure", d, lines=3000, seed=11)
    return truth, "".join((d / f).read_text() for f in truth["files"])


def _answers(base: str, text: str) -> dict:
    """What the comparison looks at: a whole report (timings aside), /score, and OIP v2 REST infer."""
    status, rep = call(base, "/analyze", {"issue": "instances fail to boot", "logs": text, "mode": "fast",
                                          "narrate": False})
    assert status == 200, rep
    rep.pop("timings_ms")
    lines = text.splitlines()[:300]
    status, score = call(base, "/score", {"lines": lines})
    assert status == 200, score
    doc = {"inputs": [{"name": "lines", "shape": [len(lines)], "datatype": "BYTES", "data": lines}]}
    status, infer = call(base, f"/v2/models/{MODEL}/infer", doc)
    assert status == 200, infer
    return {"analyze": rep, "score": score, "infer": infer}


@pytest.fixture(scope="module")
def all_in_one(trained, incident, tmp_path_factory):
    """The reference: one `bentoml serve` with the scorer beside the entry (stopped before the split starts)."""
    cfg, _ = trained
    srv = serve([], _free_port(), _env(cfg, tmp_path_factory), tmp_path_factory.mktemp("aio") / "serve.log")
    try:
        return _answers(srv.base, incident[1])
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def split(trained, all_in_one, tmp_path_factory):
    cfg, _ = trained
    logs = tmp_path_factory.mktemp("split")
    scorer_port, scorer_grpc = _free_port(), _free_port()
    scorer = serve(["bentos.service:Scorer"], scorer_port,
                   _env(cfg, tmp_path_factory, RCA_GRPC_PORT=str(scorer_grpc)), logs / "scorer.log")
    scorer.grpc_port = scorer_grpc
    entry = None
    try:
        entry = serve([], _free_port(), _env(cfg, tmp_path_factory, RCA_SCORER_URL=scorer.base),
                      logs / "entry.log")
        yield {"scorer": scorer, "entry": entry}
    finally:
        if entry is not None:
            entry.stop()
        scorer.stop()


def test_the_entry_starts_no_scorer_of_its_own(split):
    """The entry's worker processes (`--service-name ...`): itself and the narrator, no scorer."""
    def workers(pid: int) -> str:
        return subprocess.run(["ps", "-ww", "-o", "args=", "--ppid", str(pid)], capture_output=True, text=True).stdout

    entry, scorer = workers(split["entry"].proc.pid), workers(split["scorer"].proc.pid)
    assert "--service-name openstack-rca" in entry and "--service-name rca-narrator" in entry, entry
    assert "rca-scorer" not in entry, entry
    assert "--service-name rca-scorer" in scorer and "openstack-rca " not in scorer, scorer


def test_same_answers_as_all_in_one(split, all_in_one, incident):
    truth, text = incident
    apart = _answers(split["entry"].base, text)
    assert apart["analyze"]["root_cause"]["category"] == truth["category"] == "compute"
    assert apart["analyze"] == all_in_one["analyze"]
    assert apart["score"] == all_in_one["score"]
    assert apart["infer"]["outputs"] == all_in_one["infer"]["outputs"]
    assert apart["infer"]["parameters"] == all_in_one["infer"]["parameters"]


def test_the_scorer_answers_the_token_holder_only(split):
    """Its HTTP port scores for the entry (which sends the token); anyone else gets 401, probes stay open."""
    base = split["scorer"].base
    body = {"documents": ["2017-05-16 00:00:00.008 25746 INFO nova.compute.manager instance spawned"]}
    status, err = call(base, "/score_documents", body, token=None)
    assert status == 401 and "bearer token" in err["error"]
    assert call(base, "/score_documents", body, token="wrong")[0] == 401
    status, out = call(base, "/score_documents", body)
    assert status == 200 and len(out[0]["records"]) == 1, out
    assert call(base, "/readyz", token=None)[0] == 200


def test_the_narrator_answers_the_token_holder_only(trained, tmp_path_factory, tmp_path):
    """The narrator spends the Claude key: on its own port (served alone here) it narrates for token holders
    only, like the scorer; the entry sends the token (the all-in-one and split tests narrate through it)."""
    cfg, _ = trained
    port = _free_port()
    narrator = serve(["bentos.service:Narrator"], port, _env(cfg, tmp_path_factory), tmp_path / "narrator.log")
    try:
        body = {"report": {"issue": "x", "evidence": [], "root_cause": None}}
        status, err = call(narrator.base, "/narrate", body, token=None)
        assert status == 401 and "bearer token" in err["error"]
        assert call(narrator.base, "/ping", {}, token="wrong")[0] == 401
        status, out = call(narrator.base, "/ping", {})
        assert status == 200 and out == {"claude": False}, out
    finally:
        narrator.stop()


def test_the_scorer_alone_serves_grpc(split):
    grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient is a dev dependency")
    import numpy as np

    client = grpcclient.InferenceServerClient(url=f"127.0.0.1:{split['scorer'].grpc_port}")
    try:
        inp = grpcclient.InferInput("lines", [2], "BYTES")
        line = b"2017-05-16 00:00:00.008 25746 INFO nova.compute.manager [req-1 - - - - -] instance %d spawned"
        inp.set_data_from_numpy(np.array([line % 1, line % 2], dtype=np.object_))
        res = client.infer(MODEL, [inp], headers={"authorization": f"Bearer {TOKEN}"})
        assert res.as_numpy("anomaly").shape == (2,)
    finally:
        client.close()


def _status(base: str, path: str, body=None, token=TOKEN) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    try:
        with urllib.request.urlopen(urllib.request.Request(base + path, data=data, headers=headers), timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as e:
        return e.code, {**{k.lower(): v for k, v in e.headers.items()}, "body": e.read().decode(errors="replace")}


def test_scorer_killed_entry_not_ready_within_a_second(split):
    entry, scorer = split["entry"], split["scorer"]
    assert _status(entry.base, "/readyz", token=None)[0] == 200
    kill_tree(scorer.proc.pid)  # the serve process and its workers, as when the scorer's pod dies
    scorer.proc.wait(timeout=30)
    t0 = time.monotonic()
    while _status(entry.base, "/readyz", token=None)[0] != 503:
        assert time.monotonic() - t0 < 1.0, "entry /readyz still 200 a second after the scorer died"
        time.sleep(0.05)
    took = time.monotonic() - t0
    print(f"readyz 503 {took * 1000:.0f} ms after the scorer was killed")
    assert _status(entry.base, "/v2/health/ready", token=None)[0] == 503

    status, headers = _status(entry.base, "/score", {"lines": ["a line"]})
    assert status == 503 and headers.get("retry-after") == "10", headers
    assert "scorer unavailable" in json.loads(headers["body"])["error"]
    doc = {"inputs": [{"name": "lines", "shape": [1], "datatype": "BYTES", "data": ["a line"]}]}
    status, headers = _status(entry.base, f"/v2/models/{MODEL}/infer", doc)
    assert status == 503 and headers.get("retry-after") == "10", headers
    # an analysis needs the scorer too: the same clean 503, never a 500 (issue 13, row 9)
    status, headers = _status(entry.base, "/analyze", {"issue": "instances fail to boot", "mode": "fast",
                                                      "narrate": False, "logs": incident_text(300)})
    assert status == 503 and headers.get("retry-after") == "10", headers
    assert "Traceback" not in headers["body"] and json.loads(headers["body"])["request_id"]
    assert _status(entry.base, "/livez", token=None)[0] == 200  # alive: Kubernetes must not restart it


@pytest.mark.parametrize("url", ["scorer:3000", "ftp://scorer:3000", "http://scorer:3000/score"])
def test_a_bad_scorer_url_stops_serve_with_one_line(url, tmp_path):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed")
    env = {**os.environ, "RCA_API_TOKEN": TOKEN, "RCA_SCORER_URL": url, "RCA_HOME": str(tmp_path),
           "BENTOML_HOME": str(tmp_path / "bentoml")}
    r = subprocess.run([str(BENTOML), "serve", "--port", str(_free_port())], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert f"RCA_SCORER_URL must be the scorer's base URL, http(s)://host:port (got {url!r})" in r.stderr
    assert "Traceback" not in r.stderr
