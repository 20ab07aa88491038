"""The corpus store under concurrency and crashes: versions behind an atomic pointer, one writer at a time per
corpus, readers pinned to one complete version, leftovers of killed writers cleaned, full disks refused cleanly.

Parallel writers run in separate processes (the service's workers are processes), started with ``spawn`` so no
pyarrow thread pool is forked."""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from openstack_rca import corpus
from openstack_rca.corpus import Vectors
from openstack_rca.errors import InputNotFound, InvalidInput, RCAError, StorageFull, StoreBusy
from openstack_rca.retrieve.index import collection_name
from openstack_rca.store import LocalCorpusStore
from openstack_rca.store.fs import flock

NAME = "incident"


def parts(tag: int, n: int | None = None):
    """A corpus whose every file says which write made it: rows, scores, vectors and meta all carry ``tag``."""
    n = n or 20_000 + 997 * tag
    rng = np.random.default_rng(tag)
    table = pa.table({"tag": pa.array(np.full(n, tag, np.int32)), "x": pa.array(rng.random(n))})
    scores = pa.table({"tag": pa.array(np.full(n, tag, np.int32)), "anomaly": pa.array(rng.random(n))})
    vectors = Vectors("m", [f"t{tag}-{i}" for i in range(6)], np.full((6, 4), tag, np.float32))
    return table, scores, {"tag": tag}, vectors


def whole(c: corpus.Corpus) -> int:
    """The tag of the one write ``c`` comes from; fails if its files come from different writes or are torn."""
    tag = c.meta["tag"]
    n = 20_000 + 997 * tag
    assert c.table.num_rows == c.scores.num_rows == c.meta["records"] == n
    assert set(c.table["tag"].to_pylist()) == {tag} and set(c.scores["tag"].to_pylist()) == {tag}
    assert all(i.startswith(f"t{tag}-") for i in c.vectors.ids) and (c.vectors.matrix == tag).all()
    return tag


def versions(root: Path, name: str = NAME) -> list[str]:
    return sorted(p.name for p in (root / name).iterdir() if p.name.startswith("v-"))


# -- versions and the pointer -----------------------------------------------------------------------------------
def test_each_write_is_a_new_version_behind_the_pointer(cfg):
    v1 = corpus.save(cfg, NAME, *parts(1))
    c1 = corpus.load(cfg, NAME)
    assert c1.version == v1 == corpus.stamp(cfg, NAME) and whole(c1) == 1
    v2 = corpus.save(cfg, NAME, *parts(2))
    assert v2 != v1 and corpus.stamp(cfg, NAME) == v2
    assert (cfg.corpora_dir / NAME / "CURRENT").read_text().split() == [v2, v1]
    assert versions(cfg.corpora_dir) == sorted([v1, v2])  # the previous one stays for readers holding it
    c2 = corpus.load(cfg, NAME)
    assert c2.version == v2 and whole(c2) == 2
    assert whole(c1) == 1  # a pinned version is read whole: nothing later changes it
    assert [m["name"] for m in corpus.list_corpora(cfg)] == [NAME]


def test_old_versions_go_after_the_grace_period_and_readers_pinned_recently_keep_theirs(cfg):
    s = LocalCorpusStore(cfg.corpora_dir, grace_s=60)
    ids = [s.publish(NAME, *parts(i)) for i in (1, 2, 3)]
    assert versions(cfg.corpora_dir) == sorted(ids)  # v1 retired a moment ago: a reader may still hold it
    quick = LocalCorpusStore(cfg.corpora_dir, grace_s=0)
    ids.append(quick.publish(NAME, *parts(4)))
    assert versions(cfg.corpora_dir) == sorted(ids[2:])  # current and previous only


def test_a_reader_whose_version_is_collected_takes_the_current_one(cfg, monkeypatch):
    s = LocalCorpusStore(cfg.corpora_dir, grace_s=0)
    s.publish(NAME, *parts(1))
    stale = s.current(NAME)
    s.publish(NAME, *parts(2))
    s.publish(NAME, *parts(3))
    assert stale not in versions(cfg.corpora_dir)
    answers = iter([stale])
    real = s.current
    monkeypatch.setattr(s, "current", lambda name: next(answers, None) or real(name))
    assert whole(s.open(NAME)) == 3


def test_legacy_corpus_reads_and_is_replaced_by_a_version(cfg):
    d = cfg.corpora_dir / NAME
    d.mkdir(parents=True)
    table, scores, meta, vectors = parts(1)
    corpus.write_version(d, table, scores, corpus.stamp_meta(NAME, table, meta), vectors)
    c = corpus.load(cfg, NAME)
    assert c.version == "legacy" and whole(c) == 1
    LocalCorpusStore(cfg.corpora_dir, grace_s=0).publish(NAME, *parts(2))
    assert whole(corpus.load(cfg, NAME)) == 2 and not (d / "records.parquet").exists()


# -- one writer at a time --------------------------------------------------------------------------------------
def _ingest(root: str, tag: int, timeout: float, go, out) -> None:
    store = LocalCorpusStore(Path(root), lock_timeout_s=timeout)
    p = parts(tag)
    go.wait(30)
    try:
        store.publish(NAME, *p)
        out.put((tag, "ok"))
    except StoreBusy:
        out.put((tag, "busy"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put((tag, f"{type(exc).__name__}: {exc}"))


@pytest.mark.parametrize("timeout", [30.0, 0.0])
def test_parallel_ingests_of_one_name_never_mix(cfg, timeout):
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_ingest, args=(str(cfg.corpora_dir), tag, timeout, go, out)) for tag in range(1, 7)]
    for p in procs:
        p.start()
    time.sleep(2.0)  # let every child import and build its table
    go.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    assert set(results.values()) <= {"ok", "busy"}, results
    ok = [t for t, r in results.items() if r == "ok"]
    assert ok
    if timeout:
        assert len(ok) == len(procs)  # quick writes wait for each other instead of failing
    assert whole(corpus.load(cfg, NAME)) in ok
    assert not [p for p in (cfg.corpora_dir / NAME).iterdir() if p.name.startswith(".staging")]


def test_a_writer_that_cannot_get_the_lock_is_told_busy(cfg):
    s = LocalCorpusStore(cfg.corpora_dir, lock_timeout_s=0.2)
    s.publish(NAME, *parts(1))
    with flock(cfg.corpora_dir / NAME / ".lock", 1.0, "test"):
        t0 = time.monotonic()
        with pytest.raises(StoreBusy, match=repr(NAME)) as e:
            s.publish(NAME, *parts(2))
        assert 0.15 < time.monotonic() - t0 < 2.0
        assert str(cfg.home) not in str(e.value)
    assert whole(s.open(NAME)) == 1


def _reingest(root: str, n: int, out) -> None:
    store = LocalCorpusStore(Path(root), grace_s=0)
    for i in range(n):
        store.publish(NAME, *parts(1 + i % 3))
        time.sleep(0.01)
    out.put("done")


def _read(root: str, until, out) -> None:
    store = LocalCorpusStore(Path(root))
    seen, errors = 0, []
    while not until.is_set() or not seen:
        try:
            whole(store.open(NAME))
            seen += 1
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            errors.append(f"{type(exc).__name__}: {exc}")
    out.put((seen, errors[:3]))


def test_analyses_during_reingests_never_miss_the_corpus(cfg):
    corpus.save(cfg, NAME, *parts(1))
    ctx = mp.get_context("spawn")
    done, out = ctx.Event(), ctx.Queue()
    readers = [ctx.Process(target=_read, args=(str(cfg.corpora_dir), done, out)) for _ in range(2)]
    writer = ctx.Process(target=_reingest, args=(str(cfg.corpora_dir), 25, out))
    for p in [*readers, writer]:
        p.start()
    assert out.get(timeout=120) == "done"
    done.set()
    got = [out.get(timeout=60) for _ in readers]
    for p in [*readers, writer]:
        p.join(30)
    assert all(seen and not errors for seen, errors in got), got


# -- re-scoring -----------------------------------------------------------------------------------------------
def test_rescoring_publishes_a_copy_on_write_version(cfg):
    s = LocalCorpusStore(cfg.corpora_dir)
    s.publish(NAME, *parts(1))
    base = s.open(NAME)
    _, scores, _, _ = parts(1)
    new = s.rescore(base, scores, model={"name": "m", "version": "9"})
    assert new is not None and new.version == s.current(NAME) != base.version
    d = cfg.corpora_dir / NAME
    assert (d / new.version / "records.parquet").stat().st_ino == (d / base.version / "records.parquet").stat().st_ino
    again = s.open(NAME)
    assert whole(again) == 1 and again.meta["model"]["version"] == "9"
    assert whole(s.open(NAME)) == 1 and pq.read_table(d / base.version / "scores.parquet").num_rows  # base intact

    # a re-ingest won meanwhile: the stale re-score is dropped, not published over it
    s.publish(NAME, *parts(2))
    assert s.rescore(again, scores, model={"version": "10"}) is None and whole(s.open(NAME)) == 2
    # another writer holds the corpus: re-scoring does not wait
    latest = s.open(NAME)
    with flock(d / ".lock", 1.0, "test"):
        t0 = time.monotonic()
        with pytest.raises(StoreBusy):
            s.rescore(latest, parts(2)[1], model={"version": "11"})
        assert time.monotonic() - t0 < 0.5


def _rescore(root: str, by: int, go, out) -> None:
    store = LocalCorpusStore(Path(root))
    base = store.open(NAME)
    scores = base.scores.append_column("by", pa.array(np.full(base.scores.num_rows, by, np.int32)))
    go.wait(30)
    try:
        out.put((by, "published" if store.rescore(base, scores, model={"version": str(by)}) else "stale"))
    except StoreBusy:
        out.put((by, "busy"))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        out.put((by, f"{type(exc).__name__}: {exc}"))


def test_concurrent_rescoring_publishes_one_complete_version(cfg):
    corpus.save(cfg, NAME, *parts(1))
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_rescore, args=(str(cfg.corpora_dir), by, go, out)) for by in range(1, 5)]
    for p in procs:
        p.start()
    time.sleep(2.0)
    go.set()
    results = dict(out.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(30)
    assert set(results.values()) <= {"published", "stale", "busy"}, results
    c = corpus.load(cfg, NAME)
    assert whole(c) == 1
    (by,) = set(c.scores["by"].to_pylist())
    assert results[by] == "published" and c.meta["model"]["version"] == str(by)


def test_analyzer_cache_follows_the_published_version(cfg):
    from openstack_rca.analyze import Analyzer

    a = Analyzer(cfg)
    corpus.save(cfg, NAME, *parts(1))
    c1 = a._load_corpus(NAME)
    assert a._load_corpus(NAME) is c1
    corpus.save(cfg, NAME, *parts(2))
    c2 = a._load_corpus(NAME)
    assert c2.version != c1.version and whole(c2) == 2 and whole(c1) == 1

    class M:
        name, version = "m", "7"

    with flock(cfg.corpora_dir / NAME / ".lock", 1.0, "test"):
        a._keep_scores(c2, c2.scores, M())  # busy: kept in memory for this request only, no error
    assert corpus.stamp(cfg, NAME) == c2.version
    a._keep_scores(c2, c2.scores, M())
    c3 = a._load_corpus(NAME)
    assert c3.version != c2.version and c3.meta["model"]["version"] == "7" and whole(c3) == 2


# -- crashes and full disks -------------------------------------------------------------------------------------
CRASH = """
import sys, time
from pathlib import Path
import openstack_rca.store.local as local
from tests.test_corpus_store import parts

where, root, flag = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
real = getattr(local, where)
def stall(*a, **k):
    if where == "write_version":
        real(*a, **k)  # the files are staged: die before the version is renamed into place
    flag.write_text("ready")
    time.sleep(120)
setattr(local, where, stall)
local.LocalCorpusStore(root).publish("incident", *parts(2))
"""


@pytest.mark.parametrize("where", ["write_version", "replace_text"])
def test_a_writer_killed_mid_ingest_leaves_the_old_corpus_and_cleanup_removes_its_orphan(cfg, tmp_path, where):
    v1 = corpus.save(cfg, NAME, *parts(1))
    flag = tmp_path / "flag"
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CRASH), where, str(cfg.corpora_dir), str(flag)],
                            cwd=repo, env={**os.environ, "PYTHONPATH": str(repo)})
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the writer did not reach its stall"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(30)
    d = cfg.corpora_dir / NAME
    left = [p.name for p in d.iterdir() if p.name not in (v1, "CURRENT", ".lock")]
    assert left, "the killed writer should have left its staging behind"
    c = corpus.load(cfg, NAME)
    assert c.version == v1 and whole(c) == 1
    LocalCorpusStore(cfg.corpora_dir, grace_s=0).cleanup()
    assert sorted(p.name for p in d.iterdir()) == sorted([v1, "CURRENT", ".lock"])
    assert whole(corpus.load(cfg, NAME)) == 1
    corpus.save(cfg, NAME, *parts(3))  # the dead writer's lock went with it
    assert whole(corpus.load(cfg, NAME)) == 3


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_during_a_write_keeps_the_previous_version(cfg, monkeypatch, code):
    v1 = corpus.save(cfg, NAME, *parts(1))
    real = pq.write_table

    def full(table, where, *a, **k):
        if str(where).endswith("scores.parquet"):
            Path(where).write_bytes(b"PAR1 torn")
            raise OSError(code, os.strerror(code), str(where))
        return real(table, where, *a, **k)

    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(StorageFull, match=repr(NAME)) as e:
        corpus.save(cfg, NAME, *parts(2))
    assert str(cfg.home) not in str(e.value) and "corpora" not in str(e.value)
    assert sorted(p.name for p in (cfg.corpora_dir / NAME).iterdir()) == sorted([v1, "CURRENT", ".lock"])
    assert whole(corpus.load(cfg, NAME)) == 1


def test_disk_full_while_publishing_the_pointer_keeps_the_previous_version(cfg, monkeypatch):
    import openstack_rca.store.local as local

    v1 = corpus.save(cfg, NAME, *parts(1))

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local, "replace_text", full)
    with pytest.raises(StorageFull):
        corpus.save(cfg, NAME, *parts(2))
    assert versions(cfg.corpora_dir) == [v1] and corpus.stamp(cfg, NAME) == v1


# -- names, listing, messages -----------------------------------------------------------------------------------
def test_a_name_and_its_tmp_sibling_are_separate_corpora(cfg):
    corpus.save(cfg, "X.tmp", *parts(1))
    corpus.save(cfg, "X", *parts(2))
    corpus.save(cfg, "X", *parts(3))
    assert whole(corpus.load(cfg, "X.tmp")) == 1 and whole(corpus.load(cfg, "X")) == 3
    assert [m["name"] for m in corpus.list_corpora(cfg)] == ["X", "X.tmp"]


def test_collection_names_are_injective_and_valid_for_chroma():
    names = ["a", "a.", "a-", "a_", "A", "a.b", "a_b", "a-b", "x" * 101, "x" * 100 + "y", "1.2.3.4"]
    cols = [collection_name(n) for n in names]
    assert len(set(cols)) == len(names)
    segment = pytest.importorskip("chromadb.api.segment")
    for c in cols:
        segment.check_index_name(c)  # raises on a name Chroma refuses
    assert collection_name("nova-incident").startswith("rca-nova-incident-")
    for bad in ("", ".staging", "-x", "a/b", "x" * 102):
        with pytest.raises(InvalidInput):
            collection_name(bad)


def test_one_unreadable_corpus_does_not_hide_the_others(cfg, caplog):
    corpus.save(cfg, "good", *parts(1))
    corpus.save(cfg, "bad", *parts(2))
    s = LocalCorpusStore(cfg.corpora_dir)
    (cfg.corpora_dir / "bad" / s.current("bad") / "meta.json").write_text("{not json")
    corpus.save(cfg, "lost", *parts(3))
    (cfg.corpora_dir / "lost" / "CURRENT").write_text("../../etc\n")
    rows = s.list()
    assert [r["name"] for r in rows] == ["good"] and [x["name"] for x in s.skipped] == ["bad", "lost"]
    assert "bad" in caplog.text
    assert [r["name"] for r in corpus.list_corpora(cfg)] == ["good"]
    with pytest.raises(RCAError, match="'bad'") as e:
        corpus.load(cfg, "bad")
    assert str(cfg.home) not in str(e.value)
    with pytest.raises(InputNotFound, match="no corpus named 'nope'") as e:
        corpus.load(cfg, "nope")
    assert str(cfg.home) not in str(e.value) and "good" in str(e.value)


def test_delete_hides_the_corpus_at_once(cfg):
    corpus.save(cfg, NAME, *parts(1))
    corpus.delete(cfg, NAME)
    with pytest.raises(InputNotFound):
        corpus.load(cfg, NAME)
    assert corpus.list_corpora(cfg) == [] and corpus.cleanup(cfg) == {"removed": 0, "busy": 0}


def test_a_writer_holds_the_name_across_its_work(cfg):
    """What runs inside ``writer`` (an ingest's Chroma step) cannot interleave with another write of the name:
    the other writer gets StoreBusy, another name is not held up."""
    s = LocalCorpusStore(cfg.corpora_dir, lock_timeout_s=0.2)
    with s.writer(NAME) as w:
        with pytest.raises(StoreBusy):
            s.publish(NAME, *parts(2))
        s.publish("other", *parts(3))
        vid = w.publish(*parts(1))
    assert s.current(NAME) == vid and whole(s.open(NAME)) == 1 and whole(s.open("other")) == 3


def test_the_listing_names_what_it_left_out(cfg):
    corpus.save(cfg, "good", *parts(1))
    corpus.save(cfg, "bad", *parts(2))
    (cfg.corpora_dir / "bad" / LocalCorpusStore(cfg.corpora_dir).current("bad") / "meta.json").write_text("[")
    out = corpus.listing(cfg)
    assert [r["name"] for r in out["corpora"]] == ["good"]
    assert out["skipped"] == [{"name": "bad", "error": "meta.json is unreadable (JSONDecodeError)"}]
