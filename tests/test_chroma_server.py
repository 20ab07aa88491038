"""Server-mode retrieval against a real `chroma run` on loopback, and what happens when it goes away."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from openstack_rca import corpus, simulate
from openstack_rca.analyze import Analyzer
from openstack_rca.retrieve import RetrievalUnavailable, collection_name

ISSUE = "volume attach fails"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_heartbeat(proc: subprocess.Popen, port: int, what: str) -> None:
    """Until Chroma (or the proxy in front of it) answers its open heartbeat endpoint; fail with its stderr."""
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).read()
            return
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                err = proc.stderr.read() if proc.stderr else ""
                pytest.fail(f"{what} did not start {err}")
            time.sleep(0.3)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def chroma_server(tmp_path):
    exe = Path(sys.executable).parent / "chroma"
    if not exe.exists():
        pytest.skip("the chroma CLI is not installed (pip install 'openstack-rca[rag]')")
    port = _free_port()
    proc = subprocess.Popen([str(exe), "run", "--path", str(tmp_path / "chroma-data"), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_for_heartbeat(proc, port, "chroma run")
    yield proc, port
    _stop(proc)


@pytest.fixture(scope="module")
def incident(tmp_path_factory):
    d = tmp_path_factory.mktemp("cinder")
    return d, simulate.simulate("cinder_volume_attach_failure", d, lines=4000, seed=5)


def test_server_mode_ingest_and_analyze(trained, incident, chroma_server, monkeypatch):
    import chromadb

    proc, port = chroma_server
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(port))
    cfg, loaded = trained
    a = Analyzer(cfg, loaded=loaded)
    logs, truth = incident
    res = a.ingest([logs], "cinder-srv")
    assert res["indexed"] is True and res["embedded"] == res["templates"] > 10, res

    # the documents live in the server
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    col = client.get_collection(collection_name("cinder-srv"))
    assert col.count() == res["templates"]
    meta = col.get(limit=1, include=["metadatas"])["metadatas"][0]
    assert {"template_id", "service", "level", "count", "source", "line_no"} <= set(meta)

    # re-ingesting embeds nothing new
    assert a.ingest([logs], "cinder-srv")["embedded"] == 0

    rep = a.analyze(ISSUE, corpus="cinder-srv", mode="hybrid", narrate=False)
    assert rep["mode"] == "hybrid" and not rep["warnings"]
    assert rep["root_cause"]["category"] == "storage"
    assert max(ev["signals"]["semantic"] for ev in rep["evidence"]) > 0.3

    hits = a.semantic_index().search("cinder-srv", "iSCSI target could not be created", 3)
    assert hits and "iscsi" in hits[0]["text"].lower()

    # the vectors kept with the corpus give what Chroma's cosine distances give (a corpus ingested before they
    # were kept is answered from its collection)
    vectors = cfg.corpora_dir / "cinder-srv" / corpus.stamp(cfg, "cinder-srv") / "vectors.parquet"
    assert vectors.is_file()
    kept = vectors.read_bytes()
    vectors.unlink()
    old = Analyzer(cfg, loaded=loaded).analyze(ISSUE, corpus="cinder-srv", mode="hybrid", narrate=False)
    assert old["mode"] == "hybrid" and not old["warnings"]
    _same_answer(old, rep)
    vectors.write_bytes(kept)

    # Chroma goes away: the corpus keeps its vectors, so hybrid analysis goes on; search cannot
    proc.terminate()
    proc.wait(timeout=10)
    rep2 = Analyzer(cfg, loaded=loaded).analyze(ISSUE, corpus="cinder-srv", mode="hybrid", narrate=False)
    assert rep2["mode"] == "hybrid" and not rep2["warnings"]
    _same_answer(rep2, rep)
    with pytest.raises(RetrievalUnavailable):
        a.semantic_index().search("cinder-srv", "iSCSI target could not be created", 3)
    # ... and a corpus without them answers in fast mode with a warning, not a failure
    vectors.unlink()
    rep3 = Analyzer(cfg, loaded=loaded).analyze(ISSUE, corpus="cinder-srv", mode="hybrid", narrate=False)
    assert rep3["mode"] == "fast" and rep3["requested_mode"] == "hybrid"
    assert any("semantic search unavailable" in w for w in rep3["warnings"])
    assert rep3["root_cause"]["category"] == "storage"
    assert [e["text"] for e in rep3["evidence"][:3]] == [e["text"] for e in rep["evidence"][:3]]


def _same_answer(a: dict, b: dict) -> None:
    """Root cause and evidence equal, numbers within float error (cosine via Chroma vs a dot product)."""
    def close(x, y):
        if isinstance(x, dict):
            return x.keys() == y.keys() and all(close(x[k], y[k]) for k in x)
        if isinstance(x, list):
            return len(x) == len(y) and all(close(p, q) for p, q in zip(x, y))
        if isinstance(x, float):
            return abs(x - y) <= 1e-4  # values are rounded to 4 places: one float ulp may flip the last
        return x == y

    assert close(a["root_cause"], b["root_cause"]) and close(a["evidence"], b["evidence"])


def test_unreachable_server_at_ingest_keeps_the_corpus(trained, incident, monkeypatch):
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(_free_port()))  # nothing listens there
    cfg, loaded = trained
    a = Analyzer(cfg, loaded=loaded)
    logs, _ = incident
    res = a.ingest([logs], "cinder-down")
    assert res["indexed"] is False and any("semantic index not built" in w for w in res["warnings"])
    rep = a.analyze(ISSUE, corpus="cinder-down", mode="hybrid", narrate=False)
    assert rep["mode"] == "fast" and rep["root_cause"]["category"] == "storage"
    rep = a.analyze(ISSUE, paths=[logs], mode="hybrid", narrate=False)  # logs given with the question need no Chroma
    assert rep["mode"] == "hybrid" and not rep["warnings"] and rep["root_cause"]["category"] == "storage"


@pytest.fixture
def protected_chroma(tmp_path):
    """`python -m retrieval_service` with CHROMA_TOKEN: chroma run behind the token proxy, as deployed."""
    import os

    if not (Path(sys.executable).parent / "chroma").exists():
        pytest.skip("the chroma CLI is not installed (pip install 'openstack-rca[rag]')")
    port, internal = _free_port(), _free_port()
    env = {**os.environ, "CHROMA_TOKEN": "t0ken-for-tests"}
    proc = subprocess.Popen([sys.executable, "-m", "retrieval_service", "--path", str(tmp_path / "data"),
                             "--host", "127.0.0.1", "--port", str(port), "--internal-port", str(internal)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_heartbeat(proc, port, "retrieval_service")
    yield port, "t0ken-for-tests"
    _stop(proc)


def test_token_protected_server(trained, incident, protected_chroma, monkeypatch):
    import urllib.error

    port, token = protected_chroma
    # no token: 401 from the proxy, heartbeat stays open for probes
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/collections", timeout=5)
    assert err.value.code == 401

    cfg, loaded = trained
    logs, _ = incident
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(port))
    monkeypatch.setenv("CHROMA_TOKEN", "wrong")
    res = Analyzer(cfg, loaded=loaded).ingest([logs], "cinder-badtoken")
    assert res["indexed"] is False and res["warnings"]

    monkeypatch.setenv("CHROMA_TOKEN", token)
    a = Analyzer(cfg, loaded=loaded)
    res = a.ingest([logs], "cinder-token")
    assert res["indexed"] is True and res["embedded"] > 10
    rep = a.analyze(ISSUE, corpus="cinder-token", mode="hybrid", narrate=False)
    assert rep["mode"] == "hybrid" and rep["root_cause"]["category"] == "storage"


def test_reingest_replaces_the_collection_and_orphans_are_pruned(trained, incident, chroma_server, tmp_path,
                                                                  monkeypatch):
    """The collection follows the published version: a re-ingest of other logs leaves exactly its templates,
    and `rca corpora --prune-index` drops collections no corpus owns (a deleted corpus, the older naming)."""
    import json

    import chromadb

    proc, port = chroma_server
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(port))
    cfg, loaded = trained
    a = Analyzer(cfg, loaded=loaded)
    logs, _ = incident
    other = tmp_path / "amqp"
    simulate.simulate("rabbitmq_outage", other, lines=2500, seed=11)
    a.ingest([logs], "swap")
    first_ids = set(corpus.load(cfg, "swap").vectors.ids)
    second = a.ingest([other], "swap")
    client = chromadb.HttpClient(host="127.0.0.1", port=port)
    held = set(client.get_collection(collection_name("swap")).get(include=[])["ids"])
    current = corpus.load(cfg, "swap")
    assert held == set(current.vectors.ids) and len(held) == second["templates"]
    assert first_ids - held and not (first_ids - set(current.vectors.ids)) & held  # the first logs' own are gone

    client.create_collection("rca-swap")  # what the older naming (rca-<name>) left behind
    a.ingest([other], "gone", index=True)
    corpus.delete(cfg, "gone")  # a deleted corpus leaves its collection too
    # the CLI as a user runs it (in a process of its own: it quiets library loggers for its lifetime)
    env = {**os.environ, "RCA_HOME": str(cfg.home), "CHROMA_HOST": "127.0.0.1", "CHROMA_PORT": str(port)}
    res = subprocess.run([sys.executable, "-m", "openstack_rca", "corpora", "--prune-index", "--json"], env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert sorted(out["pruned"]) == sorted(["rca-swap", collection_name("gone")])
    names = {c.name for c in client.list_collections()}
    assert collection_name("swap") in names and "rca-swap" not in names and collection_name("gone") not in names
    assert "swap" in [r["name"] for r in out["corpora"]] and out["skipped"] == []
