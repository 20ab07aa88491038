"""Corpora in S3 (``RCA_CORPUS_STORE=s3://bucket/prefix``) against a real ``moto_server`` on loopback: the local
store's contract (whole versions, one writer per name across replicas, a killed writer loses nothing), then two
real ``bentoml serve`` processes sharing the bucket: ingest on one, analyze on the other, kill -9 mid-ingest."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

boto3 = pytest.importorskip("boto3")
if shutil.which("moto_server", path=str(Path(sys.executable).parent)) is None:
    pytest.skip("moto_server not installed (dev extra)", allow_module_level=True)

from openstack_rca import corpus  # noqa: E402
from openstack_rca.config import load  # noqa: E402
from openstack_rca.errors import DependencyDown, InputNotFound, StoreBusy  # noqa: E402
from openstack_rca.store.s3 import S3CorpusStore  # noqa: E402

from .test_corpus_store import parts, whole  # noqa: E402
from .test_mlflow_server import CREDS, free_port, wait_http  # noqa: E402

BUCKET = "rca-corpora"


@pytest.fixture(scope="module")
def moto(tmp_path_factory):
    port = free_port()
    env = {**os.environ, **CREDS, "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{port}"}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(port, proc, "moto_server")
        client = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL_S3"], aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield {"port": port, "env": env, "client": client}
    finally:
        proc.kill()
        proc.wait()


def _store(moto, prefix: str, **kw) -> S3CorpusStore:
    """A replica's view: its own client, as another pod would have."""
    client = boto3.client("s3", endpoint_url=moto["env"]["AWS_ENDPOINT_URL_S3"], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    return S3CorpusStore(f"s3://{BUCKET}/{prefix}", client=client, **kw)


def _keys(moto, prefix: str) -> list[str]:
    r = moto["client"].list_objects_v2(Bucket=BUCKET, Prefix=prefix + "/")
    return sorted(o["Key"] for o in r.get("Contents", []))


def test_versions_round_trip_and_the_config_picks_s3(moto, monkeypatch):
    a, b = _store(moto, "t1"), _store(moto, "t1")
    v1 = a.publish("incident", *parts(1))
    assert b.current("incident") == v1 and whole(b.open("incident")) == 1
    v2 = a.publish("incident", *parts(2))
    c = b.open("incident")
    assert whole(c) == 2 and c.version == v2 and [m["name"] for m in b.list()] == ["incident"]
    assert f"t1/incident/{v2}/records.parquet" in _keys(moto, "t1")
    re = b.rescore(c, c.scores, note="kept")
    assert re is not None and a.open("incident").meta["note"] == "kept" and whole(a.open("incident")) == 2
    assert b.rescore(c, c.scores) is None  # based on a replaced version: dropped, the newer one wins
    a.delete("incident")
    with pytest.raises(InputNotFound):
        b.open("incident")
    assert _keys(moto, "t1/incident") == []

    monkeypatch.setenv("RCA_CORPUS_STORE", f"s3://{BUCKET}/cfg")
    for k, v in moto["env"].items():
        if k.startswith("AWS_"):
            monkeypatch.setenv(k, v)
    cfg = load()
    assert cfg.store.url == f"s3://{BUCKET}/cfg" and isinstance(corpus.store(cfg), S3CorpusStore)
    corpus.save(cfg, "via-config", *parts(3))
    assert whole(corpus.load(cfg, "via-config")) == 3 and not cfg.corpora_dir.exists()


def test_one_writer_per_name_across_replicas_and_a_dead_writers_lease_expires(moto):
    a, b = _store(moto, "t2", lock_timeout_s=0.3), _store(moto, "t2", lock_timeout_s=0.3, lease_s=1.0)
    a.publish("x", *parts(1))
    with a.writer("x") as w:
        with pytest.raises(StoreBusy):
            b.publish("x", *parts(2))
        b.publish("y", *parts(3))  # another name is not held up
        w.publish(*parts(4))
    assert whole(b.open("x")) == 4

    # a writer that dies holding the lease (b's lease is 1 s): the name is free again after it expires
    lease = b._lease("x", 0.3)
    lease.__enter__()  # never released, as if the process were killed
    with pytest.raises(StoreBusy):
        a.publish("x", *parts(5))
    time.sleep(1.2)
    a.publish("x", *parts(5))
    assert whole(b.open("x")) == 5


KILLED_WRITER = textwrap.dedent("""
    import sys, boto3
    from openstack_rca.store.s3 import S3CorpusStore
    from tests.test_corpus_store import parts
    client = boto3.client("s3", endpoint_url=sys.argv[1], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
    real = client.put_object
    def put(**kw):
        if kw["Key"].endswith("/CURRENT"):
            print("uploaded", flush=True)
            import time; time.sleep(60)  # killed here: the version is up, the pointer not yet moved
        return real(**kw)
    client.put_object = put
    S3CorpusStore(sys.argv[2], client=client, lease_s=2.0).publish("k", *parts(7))
""")


def test_a_writer_killed_before_publishing_loses_nothing(moto):
    s = _store(moto, "t3", grace_s=0.0)
    old = s.publish("k", *parts(1))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, moto["env"]["AWS_ENDPOINT_URL_S3"],
                             f"s3://{BUCKET}/t3"], cwd=Path(__file__).parent.parent, stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "uploaded"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert s.current("k") == old and whole(s.open("k")) == 1  # the old version answers
    versions = {k.split("/")[2] for k in _keys(moto, "t3/k") if "/v-" in k}
    assert len(versions) == 2  # the killed writer's upload is there, unreferenced
    time.sleep(2.1)  # its lease (2 s) expires
    assert s.cleanup()["removed"] == 1
    assert {k.split("/")[2] for k in _keys(moto, "t3/k") if "/v-" in k} == {old}


def test_s3_down_is_a_dependency_error(moto):
    s = S3CorpusStore(f"s3://{BUCKET}/t4", client=boto3.client(
        "s3", endpoint_url=f"http://127.0.0.1:{free_port()}", aws_access_key_id="testing",
        aws_secret_access_key="testing", region_name="us-east-1",
        config=boto3.session.Config(retries={"max_attempts": 1}, connect_timeout=1)))
    with pytest.raises(DependencyDown, match="S3 unavailable") as e:
        s.open("x")
    assert "testing" not in str(e.value) and "127.0.0.1" not in str(e.value)


@pytest.mark.slow
def test_two_services_share_the_bucket_and_a_killed_ingest_loses_nothing(moto, trained, tmp_path):
    """Ingest on one replica, analyze on the other; kill -9 the first mid-ingest: the other still answers the old
    corpus, whole, and nothing of it was on either replica's disk."""
    import threading

    from openstack_rca.warmup import incident_text

    from .test_resilience import _kill9, _serve, _stop, raw_call

    if not Path(sys.executable).with_name("bentoml").exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    cfg, _ = trained
    env = {**{k: v for k, v in moto["env"].items() if k.startswith("AWS_")},
           "RCA_CORPUS_STORE": f"s3://{BUCKET}/replicas", "RCA_SERVE_MAX_BODY_BYTES": str(64 * 1024 * 1024),
           "RCA_SERVE_MAX_ANALYZE_LINES": "400000", "RCA_SERVE_MAX_SCORE_LINES": "500"}
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    a = _serve(cfg.home, tmp_path / "a", env)
    b = _serve(cfg.home, tmp_path / "b", env)
    try:
        small = incident_text(800)
        st, _, out = raw_call(a["base"], "/ingest", json.dumps({"corpus": "shared", "logs": small,
                                                                "index": True}).encode())
        assert st == 200, out
        records = [r["records"] for r in raw_call(a["base"], "/corpora", None, method="GET")[2]["corpora"]
                   if r["name"] == "shared"][0]
        st, _, rows = raw_call(b["base"], "/corpora", None, method="GET")
        assert st == 200 and [r["records"] for r in rows["corpora"] if r["name"] == "shared"] == [records] \
            and records > 500
        st, _, rep = raw_call(b["base"], "/analyze", json.dumps({"issue": "instances fail to boot", "mode": "hybrid",
                                                                 "corpus": "shared", "narrate": False}).encode())
        assert st == 200, rep
        # hybrid on the other replica: the template vectors travel with the corpus, so its own Chroma is not asked
        assert rep["mode"] == "hybrid" and not rep["warnings"], rep["warnings"]
        assert max(ev["signals"]["semantic"] for ev in rep["evidence"]) > 0
        assert not (cfg.corpora_dir / "shared").exists()  # in the bucket, not on a replica's disk

        big = json.dumps({"corpus": "shared", "logs": incident_text(150_000), "index": False}).encode()
        before = {k for k in _keys(moto, "replicas/shared") if "/v-" in k}
        done: list = []
        def big_ingest():
            try:
                done.append(raw_call(a["base"], "/ingest", big, timeout=300)[0])
            except OSError:  # the server was killed under it: that is the point
                done.append("killed")

        t = threading.Thread(target=big_ingest, daemon=True)
        t.start()
        time.sleep(1.0)  # parsing and scoring 150k lines: the kill lands mid-ingest (the store tests kill mid-upload)
        assert not done, "the ingest finished before it could be killed: make it bigger"
        _kill9(a)
        t.join(timeout=30)
        st, _, rows = raw_call(b["base"], "/corpora", None, method="GET")
        assert [r["records"] for r in rows["corpora"] if r["name"] == "shared"] == [records]
        st, _, rep = raw_call(b["base"], "/analyze", json.dumps({"issue": "instances fail to boot",
                                                                 "corpus": "shared", "narrate": False}).encode())
        assert st == 200 and rep["source"]["records"] == records, rep.get("source")
        assert {k for k in _keys(moto, "replicas/shared") if "/v-" in k} == before  # nothing half-published
    finally:
        for srv in (a, b):
            _stop(srv)
            srv["log"].close()
