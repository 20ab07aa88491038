"""The corpus store's safety through a real `bentoml serve`: parallel ingests of one name, a server killed with
SIGKILL mid-ingest, and a real full disk (a 50 MB tmpfs in a private mount namespace).

``tests/test_corpus_store.py`` proves the store in-process; these tests prove that what a client of the service sees
holds to the same contract: every answer is a 200 or a clean 409/507 in the project's error shape, and the corpus
on disk is always exactly one request's data, never a mix, a torn file or a lost corpus.

Every request's log text says which request it came from: its messages carry a digit-free word of its own (the
masker keeps such words, so each request has its own templates too) and its own host names, and each request has
its own line count.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .test_resilience import _assert_error_shape, _log, _serve, _stop, raw_call
from .test_service import BENTOML

pytestmark = pytest.mark.slow

TAGS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliett", "kilo",
        "lima")
WRITERS = 8
ROUNDS = 3
LIMITS = {"RCA_SERVE_MAX_BODY_BYTES": str(32 * 1024 * 1024), "RCA_SERVE_MAX_ANALYZE_LINES": "300000"}
_TAG = re.compile(r"\] ([a-z]+) marker on ([a-z]+)-compute-\d+ ")


def logs(tag: str, n: int, seed: int = 0) -> str:
    """``n`` OpenStack (oslo) lines that only request ``tag`` writes: two templates of its own, its own hosts."""
    rnd = random.Random(f"{tag}-{seed}")
    out = []
    for i in range(n):
        kind = "ok" if i % 5 else "retried"
        out.append(f"2017-05-16 00:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d} 2{i % 10}931 INFO "
                   f"nova.compute.manager [req-{rnd.getrandbits(128):032x} - - - - -] [instance: "
                   f"{rnd.getrandbits(64):016x}] {tag} marker on {tag}-compute-{i % 7} step {i} {kind}")
    return "\n".join(out) + "\n"


def ingest(base: str, name: str, tag: str, n: int, *, index: bool = False, timeout: float = 180):
    body = json.dumps({"corpus": name, "logs": logs(tag, n), "index": index}).encode()
    return raw_call(base, "/ingest", body, timeout=timeout)


def analyze(base: str, name: str, mode: str = "fast", timeout: float = 180):
    body = json.dumps({"issue": "instances fail to boot on compute hosts", "corpus": name, "mode": mode,
                       "narrate": False}).encode()
    return raw_call(base, "/analyze", body, timeout=timeout)


def listed(base: str) -> dict[str, dict]:
    status, _, out = raw_call(base, "/corpora", None, method="GET")
    assert status == 200, out
    return {row["name"]: row for row in out["corpora"]}


def check_version(vdir: Path) -> tuple[str, int]:
    """(tag, records) of one version directory; fails unless every file in it reads whole and comes from one
    request (records, scores, vectors and meta agree)."""
    meta = json.loads((vdir / "meta.json").read_text())
    records = pq.read_table(vdir / "records.parquet")
    scores = pq.read_table(vdir / "scores.parquet")
    pairs = {m.groups() for m in map(_TAG.search, records["message"].to_pylist()) if m}
    assert len(pairs) == 1, f"{vdir.name} mixes requests: {sorted(pairs)}"
    (tag, host), = pairs
    assert tag == host and tag in TAGS
    n = records.num_rows
    assert sum(1 for m in records["message"].to_pylist() if _TAG.search(m)) == n, f"{vdir.name}: foreign rows"
    assert scores.num_rows == n == meta["records"] == meta["input"]["lines"], (vdir.name, meta)
    if (vdir / "vectors.parquet").exists():
        ids = pq.read_table(vdir / "vectors.parquet")["template_id"].to_pylist()
        assert set(ids) == set(records["template_id"].to_pylist()), f"{vdir.name}: vectors of other templates"
    return tag, n


def check_corpus(root: Path, base: str, name: str) -> tuple[str, int, str]:
    """The published version of ``name`` as the service lists it and as it lies on disk: (tag, records, id).
    Every version on disk is whole, no staging is left, and the listing is the published version's meta."""
    d = root / name
    vid = (d / "CURRENT").read_text().split()[0]
    leftovers = [p.name for p in d.iterdir() if p.name.startswith(".staging-")]
    assert not leftovers, leftovers
    for v in (p for p in d.iterdir() if p.name.startswith("v-")):
        check_version(v)
    tag, n = check_version(d / vid)
    row = listed(base)[name]
    assert row["records"] == n and row == json.loads((d / vid / "meta.json").read_text()), row
    return tag, n, vid


def sizes(round_no: int) -> dict[str, int]:
    """Each writer's tag and line count: different counts tell the requests apart by size too."""
    return {TAGS[i]: 120 + 37 * i + 11 * round_no for i in range(WRITERS)}


@pytest.fixture(scope="module")
def svc(trained, tmp_path_factory):
    """One server on a copy of the trained home; the kill test replaces it with a restarted one."""
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    cfg, _ = trained
    tmp = tmp_path_factory.mktemp("store-serve")
    home = tmp / "home"
    shutil.copytree(cfg.home, home, ignore=shutil.ignore_patterns("corpora", "chroma"))
    env = {**LIMITS, "RCA_STORE_LOCK_TIMEOUT_S": "0.3", "MLFLOW_TRACKING_URI": None}
    holder = {"home": home, "root": home / "corpora", "env": env, "srv": _serve(home, tmp, env)}
    yield holder
    _stop(holder["srv"])
    holder["srv"]["log"].close()


def race(base: str, name: str, round_no: int, *, index: bool, before: int, mode: str = "fast") -> dict:
    """WRITERS parallel ingests of ``name`` and analyses of it meanwhile; checks every answer's status and shape."""
    plan = sizes(round_no)
    go = threading.Barrier(len(plan) + 3)
    done = threading.Event()

    def write(tag: str):
        go.wait()
        return tag, ingest(base, name, tag, plan[tag], index=index)

    def read():
        go.wait()
        seen = []
        while not done.is_set() or not seen:
            seen.append(analyze(base, name, mode))
        return seen

    with ThreadPoolExecutor(len(plan) + 3) as ex:
        readers = [ex.submit(read) for _ in range(3)]
        writers = [ex.submit(write, t) for t in plan]
        answers = dict(f.result() for f in writers)
        done.set()
        reads = [a for f in readers for a in f.result()]
    ok = {t for t, (status, _, _) in answers.items() if status == 200}
    for tag, (status, headers, out) in answers.items():
        if status == 200:
            assert out["corpus"] == name and out["input"]["records"] == plan[tag], out
            assert out["indexed"] is index, out
        else:
            _assert_error_shape(status, headers, out, 409)
            assert headers["Retry-After"] and "retry" in out["error"], out
    assert ok, f"no ingest of round {round_no} succeeded: {[a[0] for a in answers.values()]}"
    allowed = {plan[t] for t in plan} | {before}
    for status, headers, out in reads:
        assert status == 200, (status, out)  # readers never wait for writers, never see a missing corpus
        assert out["source"]["records"] in allowed, out["source"]
    return {"plan": plan, "ok": ok, "busy": len(plan) - len(ok), "reads": len(reads)}


def published_after(holder: dict, name: str, result: dict) -> tuple[str, int, str]:
    tag, n, vid = check_corpus(holder["root"], holder["srv"]["base"], name)
    assert tag in result["ok"] and n == result["plan"][tag], (tag, n, result)  # a refused request never wins
    status, _, rep = analyze(holder["srv"]["base"], name)
    assert status == 200 and rep["source"]["records"] == n, rep
    return tag, n, vid


# -- 1. the race ------------------------------------------------------------------------------------------------
def test_parallel_ingests_of_one_name_leave_exactly_one_request_s_corpus(svc, record_property):
    base, name = svc["srv"]["base"], "race"
    status, _, out = ingest(base, name, "lima", 50)
    assert status == 200, out
    before, busy = 50, 0
    for r in range(ROUNDS):
        result = race(base, name, r, index=False, before=before)
        _, before, _ = published_after(svc, name, result)
        busy += result["busy"]
    assert "Traceback" not in _log(svc["srv"])
    record_property("ingests_answered_409", busy)  # with a 0.3 s lock timeout some writers are refused


def test_parallel_indexed_ingests_leave_one_request_s_corpus_and_only_its_templates_in_chroma(svc):
    """Indexing on (embedded Chroma): the Chroma step runs under the corpus lock, and the collection is pruned
    to the published version's templates, so a hybrid analysis searches exactly what the corpus holds."""
    base, name = svc["srv"]["base"], "race-indexed"
    status, _, out = ingest(base, name, "lima", 50, index=True)
    assert status == 200 and out["indexed"], out
    result = race(base, name, 7, index=True, before=50, mode="hybrid")
    tag, n, vid = published_after(svc, name, result)
    status, _, rep = analyze(base, name, mode="hybrid")
    assert status == 200 and rep["mode"] == "hybrid" and rep["source"]["records"] == n, rep
    import chromadb
    from chromadb.config import Settings

    from openstack_rca.retrieve.index import collection_name

    client = chromadb.PersistentClient(path=str(svc["home"] / "chroma"), settings=Settings(anonymized_telemetry=False))
    in_chroma = set(client.get_collection(collection_name(name)).get(include=[])["ids"])
    published = set(pq.read_table(svc["root"] / name / vid / "records.parquet")["template_id"].to_pylist())
    assert in_chroma == published, f"published {tag}; Chroma also holds {len(in_chroma - published)} other templates"
    assert "Traceback" not in _log(svc["srv"])


# -- 2. kill -9 mid-ingest --------------------------------------------------------------------------------------
def test_server_killed_mid_ingest_keeps_the_old_corpus_and_sweeps_staging_at_start(svc, tmp_path):
    psutil = pytest.importorskip("psutil")
    base, name = svc["srv"]["base"], "keep"
    status, _, out = ingest(base, name, "kilo", 300)
    assert status == 200, out
    d = svc["root"] / name
    old = (d / "CURRENT").read_text().split()[0]
    # BentoML starts each worker in a session of its own: killing the process group would leave the entry worker
    # running (it would finish the ingest), so every process of the server is killed at once
    server = psutil.Process(svc["srv"]["proc"].pid)
    tree = [server, *server.children(recursive=True)]
    assert any("openstack-rca" in " ".join(p.cmdline()) for p in tree), [p.cmdline() for p in tree]

    def big_ingest():
        try:
            ingest(base, name, "juliett", 120_000, timeout=300)
        except OSError:  # the server died under it: that is the point
            pass

    big = threading.Thread(target=big_ingest, daemon=True)
    big.start()
    deadline, staging = time.monotonic() + 240, []
    while not staging:
        staging = [p for p in os.listdir(d) if p.startswith(".staging-")]
        assert time.monotonic() < deadline and big.is_alive(), "the big ingest never started writing"
        time.sleep(0.002)
    for p in tree:
        try:
            p.send_signal(signal.SIGKILL)
        except psutil.NoSuchProcess:
            pass
    assert not psutil.wait_procs(tree, timeout=30)[1], "a server process survived SIGKILL"
    svc["srv"]["proc"].wait(timeout=30)
    svc["srv"]["log"].close()
    big.join(timeout=30)
    assert (d / "CURRENT").read_text().split()[0] == old  # killed before publishing
    assert any(p.startswith(".staging-") for p in os.listdir(d)), "the kill did not land mid-write"

    svc["srv"] = _serve(svc["home"], tmp_path, svc["env"])
    base = svc["srv"]["base"]
    assert not [p for p in os.listdir(d) if p.startswith(".staging-")]  # swept at start
    tag, n, vid = check_corpus(svc["root"], base, name)
    assert (tag, n, vid) == ("kilo", 300, old)
    status, _, rep = analyze(base, name)
    assert status == 200 and rep["source"]["records"] == 300 and rep["source"]["input"]["lines"] == 300, rep


# -- 3. a real full disk ----------------------------------------------------------------------------------------
TMPFS_MB, FILLER_MB = 50, 40


def _can_mount_tmpfs(tmp: Path) -> str:
    """'' when this machine lets an unprivileged user namespace mount a tmpfs, else why not."""
    if not shutil.which("unshare"):
        return "unshare (util-linux) is not installed"
    probe = tmp / "probe"
    probe.mkdir()
    try:
        r = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            'mount -t tmpfs -o size=1m tmpfs "$0"', str(probe)],
                           capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unshare failed: {exc}"
    return "" if r.returncode == 0 else f"cannot mount a tmpfs in a user namespace: {r.stderr.strip()[:200]}"


def test_disk_full_is_507_keeps_every_corpus_and_recovers(trained, tmp_path, record_property):
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    why = _can_mount_tmpfs(tmp_path)
    if why:
        pytest.skip(f"no real full disk here: {why}")
    cfg, _ = trained
    home = tmp_path / "home"
    shutil.copytree(cfg.home, home, ignore=shutil.ignore_patterns("corpora", "chroma"))
    corpora = home / "corpora"
    corpora.mkdir()
    # only the corpora live on the tmpfs (the model, caches and Chroma stay on the real disk); a filler file takes
    # most of it, so a few ingests fill the rest. Names starting with '.' are never corpora.
    script = (f'mount -t tmpfs -o size={TMPFS_MB}m tmpfs "$0" && '
              f'dd if=/dev/zero of="$0/.filler" bs=1M count={FILLER_MB} status=none && exec "$@"')
    srv = _serve(home, tmp_path, {**LIMITS, "MLFLOW_TRACKING_URI": None},
                 wrap=("unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, str(corpora)))
    try:
        base = srv["base"]
        inside = Path(f"/proc/{srv['proc'].pid}/root") / str(corpora).lstrip("/")  # the server's view
        fs = os.statvfs(inside)
        assert fs.f_blocks * fs.f_frsize == TMPFS_MB << 20, "the server does not see the tmpfs"
        assert (inside / ".filler").stat().st_size == FILLER_MB << 20 and not (corpora / ".filler").exists()
        small = {"small-a": ("alpha", 200), "small-b": ("bravo", 230), "small-c": ("charlie", 260)}
        for name, (tag, n) in small.items():
            status, _, out = ingest(base, name, tag, n)
            assert status == 200 and out["input"]["records"] == n, out

        last, full = None, None
        for i, tag in enumerate(("delta", "echo", "foxtrot", "golf", "hotel", "india")):
            n = 40_000 + 1_000 * i
            status, headers, out = ingest(base, "bulk", tag, n)
            if status == 200:
                last = (tag, n)
                continue
            full = (status, headers, out)
            break
        assert full is not None, "the tmpfs never filled"
        record_property("bulk_ingests_before_full", i)
        status, headers, out = full
        _assert_error_shape(status, headers, out, 507)
        assert "no space left" in out["error"] and "/" not in out["error"], out  # no server path
        assert "Retry-After" not in headers
        status, headers, out = ingest(base, "never-made", "india", 40_000)  # a new name on the full disk
        _assert_error_shape(status, headers, out, 507)
        status, headers, out = analyze(base, "never-made")
        _assert_error_shape(status, headers, out, 404)  # not half-made: simply not there

        rows = listed(base)
        assert "never-made" not in rows
        for name, (tag, n) in small.items():
            assert rows[name]["records"] == n, rows[name]
            status, _, rep = analyze(base, name)
            assert status == 200 and rep["source"]["records"] == n, rep
            assert check_version(inside / name / (inside / name / "CURRENT").read_text().split()[0]) == (tag, n)
        assert last is not None, "the first bulk ingest should fit"  # its re-ingest hit the full disk: kept
        assert rows["bulk"]["records"] == last[1]
        status, _, rep = analyze(base, "bulk")
        assert status == 200 and rep["source"]["records"] == last[1], rep
        assert not [p for p in os.listdir(inside / "bulk") if p.startswith(".staging-")]
        assert "Traceback" not in _log(srv)

        (inside / ".filler").unlink()  # space again: the next ingest succeeds
        status, _, out = ingest(base, "after-full", "kilo", 500)
        assert status == 200 and out["input"]["records"] == 500, out
        status, _, rep = analyze(base, "after-full")
        assert status == 200 and rep["source"]["records"] == 500, rep
        assert listed(base)["after-full"]["records"] == 500
    finally:
        _stop(srv)
        srv["log"].close()
