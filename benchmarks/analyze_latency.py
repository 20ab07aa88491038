"""Analyze latency of the RCA engine on an ingested 100k-line corpus (targets: fast <= 500 ms, hybrid <= 1500 ms
without the narrative, semantic query p50 <= 10 ms).

    python benchmarks/analyze_latency.py [--lines 100000] [--repeats 7] [--fault rabbitmq_outage] [--json]

All in one process, under a temporary RCA_HOME (embedded MLflow and Chroma; $MLFLOW_TRACKING_URI and
$CHROMA_HOST are ignored, models are never fetched: HF_HUB_OFFLINE=1):

1. trains the default model (``rca train`` defaults) on 12k lines of simulated normal traffic;
2. simulates an incident of ``--lines`` lines and ingests it (parse, score, semantic index) as corpus ``bench``;
3. times ``Analyzer.analyze(..., corpus="bench", narrate=False)`` in fast and hybrid mode, ``--repeats`` times
   each after one warm-up, every call with a different operator issue (the issue embedding is LRU-cached by
   text: repeating a text would hide the embedding cost). Medians and minimums of ``timings_ms["total"]``, and
   the per-stage medians;
4. times a semantic query three ways, 200 distinct texts each: the embedding alone, the Chroma kNN query alone
   (n_results=50, as ``similarities`` asks), and ``SemanticIndex.search`` end to end (embed + query). The
   target applies to the end-to-end number; the other two show where its time goes.

The model and the embedding model are loaded before the ingest is timed (their one-off load times are printed
apart): a server pays them once at start-up, not per request.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
for _var in ("MLFLOW_TRACKING_URI", "CHROMA_HOST", "CHROMA_PORT", "CHROMA_TOKEN", "RCA_CONFIG"):
    os.environ.pop(_var, None)  # everything embedded under the temporary RCA_HOME

import numpy as np  # noqa: E402

from model_training.pipeline import train  # noqa: E402
from openstack_rca import simulate  # noqa: E402
from openstack_rca.config import load  # noqa: E402
from openstack_rca.score.deeplog import DeepLogConfig  # noqa: E402

TARGETS_MS = {"fast": 500.0, "hybrid": 1500.0, "semantic_p50": 10.0}
STAGES = ("corpus", "score", "retrieve", "diagnose")
SEMANTIC_N = 200

# what operators write in a ticket: symptoms, not causes, with the time they noticed
SYMPTOMS = [
    "API calls time out and instances stay in BUILD",
    "nova boot hangs and new VMs never leave BUILD",
    "openstack server create returns 504 Gateway Timeout",
    "instances are stuck in BUILD or go to ERROR",
    "volume attach requests hang and never complete",
    "instance deletes are stuck in deleting state",
    "the dashboard is very slow and launching instances fails",
    "users report that VMs do not start",
    "cinder volumes stay in attaching forever",
    "nova list is slow and server actions do nothing",
    "scheduling seems broken, no instance gets a host",
    "compute services are reported down in nova service-list",
    "neutron ports are created but instances never become ACTIVE",
    "resize and migrate operations time out",
    "everything that touches nova hangs for 60 seconds then fails",
    "customers cannot boot instances in the production region",
]
WHEN = ["since {t}", "since about {t}", "starting around {t}", "from {t} onwards", "after {t} today",
        "since {t} UTC", "beginning {t}"]
TAILS = ["", "", " for all projects", " in region RegionOne", " on every compute host", ", nothing changed on our side",
         " and retries do not help", ", please investigate", " for project {p}", " (ticket #{n})"]


def issue_texts(started_at: str | None, n: int, seed: int = 0) -> list[str]:
    """n distinct, realistic issue texts naming times around the fault's start."""
    base = datetime.fromisoformat(started_at.replace("Z", "+00:00")) if started_at else None
    rng = random.Random(seed)
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        if base is not None:
            t = (base + timedelta(minutes=rng.randint(-3, 12))).strftime("%H:%M")
            when = " " + rng.choice(WHEN).format(t=t)
        else:
            when = ""
        tail = rng.choice(TAILS).format(p=f"tenant-{rng.randint(1, 999)}", n=rng.randint(10_000, 99_999))
        text = f"{rng.choice(SYMPTOMS)}{when}{tail}"
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out


def percentile(xs: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q))


def timed_ms(fn, items) -> list[float]:
    out = []
    for x in items:
        t0 = time.perf_counter()
        fn(x)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def cpu_name() -> str:
    name = platform.processor()
    if not name:
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    return name or platform.machine()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--fault", default="rabbitmq_outage", choices=sorted(simulate.FAULTS))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    say = (lambda *a: print(*a, file=sys.stderr, flush=True)) if args.json else (lambda *a: print(*a, flush=True))
    wall0 = time.perf_counter()
    load_start = os.getloadavg()
    phases: dict[str, float] = {}

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["RCA_HOME"] = f"{tmp}/home"
        cfg = load()
        from openstack_rca.analyze import Analyzer

        t0 = time.perf_counter()
        simulate.simulate("none", f"{tmp}/normal", lines=12_000, seed=1)
        trained = train([f"{tmp}/normal"], cfg, DeepLogConfig(window=cfg.model.window, top_g=cfg.model.top_g,
                                                              epochs=cfg.model.epochs, seed=0))
        phases["train_s"] = time.perf_counter() - t0
        say(f"trained model v{trained['version']} on 12,000 normal lines in {phases['train_s']:.1f} s")

        t0 = time.perf_counter()
        truth = simulate.simulate(args.fault, f"{tmp}/incident", lines=args.lines, seed=7)
        phases["simulate_s"] = time.perf_counter() - t0
        truth = json.loads(Path(f"{tmp}/incident/ground_truth.json").read_text(encoding="utf-8")) or truth
        say(f"simulated {args.fault}: {truth['lines']:,} lines in {len(truth['files'])} files, "
            f"fault starts {truth['started_at']} ({phases['simulate_s']:.1f} s)")

        a = Analyzer(cfg)
        t0 = time.perf_counter()
        _ = a.model
        phases["model_load_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        idx = a.semantic_index()
        idx.embedder.load()
        phases["embedder_load_s"] = time.perf_counter() - t0

        t0 = time.perf_counter()
        ing = a.ingest([f"{tmp}/incident"], "bench")
        phases["ingest_s"] = time.perf_counter() - t0
        if ing["warnings"]:
            say("ingest warnings: " + "; ".join(ing["warnings"]))
        records = int(ing["input"].get("records", 0)) if isinstance(ing["input"], dict) else 0
        say(f"ingested {records:,} records, {ing.get('templates', '?')} templates "
            f"({ing['embedded']} embedded) in {phases['ingest_s']:.1f} s")

        # -- analyze ---------------------------------------------------------------------------------------
        texts = issue_texts(truth.get("started_at"), 2 * (args.repeats + 1) + 2 * SEMANTIC_N + 10)
        pool = iter(texts)
        runs: dict[str, list[dict]] = {}
        sample: dict[str, dict] = {}
        for mode in ("fast", "hybrid"):
            a.analyze(next(pool), corpus="bench", mode=mode, narrate=False)  # warm-up
            reps = []
            for _ in range(args.repeats):
                issue = next(pool)
                rep = a.analyze(issue, corpus="bench", mode=mode, narrate=False)
                reps.append(rep)
            runs[mode] = reps
            sample[mode] = reps[-1]

        def summary(mode: str) -> dict:
            reps = runs[mode]
            tot = [r["timings_ms"]["total"] for r in reps]
            return {
                "mode_used": sorted({r["mode"] for r in reps}),
                "total_median_ms": statistics.median(tot), "total_min_ms": min(tot), "total_max_ms": max(tot),
                "stages_median_ms": {s: statistics.median([r["timings_ms"].get(s, 0.0) for r in reps])
                                     for s in STAGES if any(s in r["timings_ms"] for r in reps)},
                "categories": sorted({str(r["root_cause"].get("category")) for r in reps}),
                "correct": sum(r["root_cause"].get("category") == truth["category"] for r in reps),
                "missed": [f"{r['issue']!r}: {r['root_cause']['summary'][:90]}" for r in reps
                           if r["root_cause"].get("category") != truth["category"]],
                "warnings": sorted({w for r in reps for w in r["warnings"]}),
            }

        analyze = {m: summary(m) for m in runs}

        # -- semantic query --------------------------------------------------------------------------------
        emb_texts = [next(pool) for _ in range(SEMANTIC_N)]
        search_texts = [next(pool) for _ in range(SEMANTIC_N)]  # never seen by embed_query: no LRU hits
        col = idx._collection("bench")
        # compute(): the model itself, past the machine's embedding cache (which would answer repeats)
        idx.embedder.compute(["warm up the tokenizer and the model"])
        embed_ms = timed_ms(lambda s: idx.embedder.compute([s]), emb_texts)
        vecs = idx.embedder.compute(emb_texts)
        n_results = min(50, col.count())
        col.query(query_embeddings=[vecs[0]], n_results=n_results, include=["distances"])  # warm-up
        knn_ms = timed_ms(lambda v: col.query(query_embeddings=[v], n_results=n_results, include=["distances"]),
                          vecs)
        idx.search("bench", "warm-up query for the search path", 10)
        search_ms = timed_ms(lambda s: idx.search("bench", s, 10), search_texts)
        hits = idx.search("bench", search_texts[0], 3)

        semantic = {name: {"p50_ms": percentile(xs, 50), "p95_ms": percentile(xs, 95), "min_ms": min(xs), "n": len(xs)}
                    for name, xs in (("embed", embed_ms), ("knn_query", knn_ms), ("search", search_ms))}
        semantic["knn_query"]["n_results"] = n_results
        semantic["collection_size"] = col.count()

    wall = time.perf_counter() - wall0
    load_end = os.getloadavg()
    import torch

    torch_threads = torch.get_num_threads()
    checks = [
        {"check": "fast analyze, median total", "measured_ms": analyze["fast"]["total_median_ms"],
         "target_ms": TARGETS_MS["fast"]},
        {"check": "hybrid analyze, median total (no narrative)", "measured_ms": analyze["hybrid"]["total_median_ms"],
         "target_ms": TARGETS_MS["hybrid"]},
        {"check": "semantic query p50 (embed + kNN)", "measured_ms": semantic["search"]["p50_ms"],
         "target_ms": TARGETS_MS["semantic_p50"]},
    ]
    for c in checks:
        c["pass"] = c["measured_ms"] <= c["target_ms"]
    rep = sample["hybrid"]
    result = {
        "date": date.today().isoformat(), "cpu": cpu_name(), "cpus": os.cpu_count(),
        "python": platform.python_version(), "torch_threads": torch_threads,
        "loadavg_1m": {"start": load_start[0], "end": load_end[0]},
        "fault": args.fault, "expected_category": truth["category"],
        "corpus": {"lines": truth["lines"], "records": records, "templates": ing.get("templates"),
                   "files": len(truth["files"]), "started_at": truth.get("started_at")},
        "model": {"version": trained["version"], "window": cfg.model.window, "top_g": cfg.model.top_g,
                  "epochs": cfg.model.epochs},
        "embedding_model": idx.embedder.name, "repeats": args.repeats,
        "phases_s": phases, "ingest_timings_ms": ing["timings_ms"], "analyze": analyze, "semantic": semantic,
        "checks": checks, "sane": all(analyze[m]["correct"] == args.repeats for m in analyze),
        "sample_report": {"issue": rep["issue"], "mode": rep["mode"], "root_cause": rep["root_cause"],
                          "onset": rep["onset"], "stats": rep["stats"],
                          "evidence": [{k: ev[k] for k in ("id", "service", "level", "timestamp", "score", "text")}
                                       for ev in rep["evidence"][:5]]},
        "wall_s": wall,
    }
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return 0

    print()
    print(f"{result['date']}  {result['cpu']}, {result['cpus']} CPUs, Python {result['python']}, "
          f"torch threads {torch_threads}; 1-min load average {load_start[0]:.2f} at start, {load_end[0]:.2f} at end")
    cp = result["corpus"]
    print(f"corpus: {args.fault}, {cp['lines']:,} lines -> {cp['records']:,} records, {cp['templates']} templates, "
          f"{cp['files']} files; model v{trained['version']} (window {cfg.model.window}, top-g {cfg.model.top_g}, "
          f"{cfg.model.epochs} epochs); embeddings {idx.embedder.name}, Chroma embedded")
    print(f"one-off loads: model {phases['model_load_s'] * 1000:.0f} ms, embedding model "
          f"{phases['embedder_load_s'] * 1000:.0f} ms")
    t = ing["timings_ms"]
    print(f"ingest: parse {t['parse']:,.0f} ms, score {t['score']:,.0f} ms, index {t['index']:,.0f} ms, "
          f"total {t['total']:,.0f} ms")
    print()
    print(f"analyze (narrate=False), {args.repeats} runs after 1 warm-up, a different issue text per run:")
    print(f"{'mode':<8} {'median':>9} {'min':>9} {'max':>9} " + " ".join(f"{s:>9}" for s in STAGES)
          + "  root cause category")
    for m, s in analyze.items():
        stages = " ".join(f"{s['stages_median_ms'].get(k, 0.0):>9.1f}" if k in s["stages_median_ms"] else f"{'-':>9}"
                          for k in STAGES)
        print(f"{m:<8} {s['total_median_ms']:>9.1f} {s['total_min_ms']:>9.1f} {s['total_max_ms']:>9.1f} {stages}  "
              f"{','.join(s['categories'])} ({s['correct']}/{args.repeats} = {truth['category']})")
        for w in s["warnings"]:
            print(f"         warning: {w}")
    print("(ms; stage columns are medians; 'corpus' reads the ingested corpus, 'score' appears only when re-scored)")
    print()
    print(f"semantic query, {SEMANTIC_N} distinct texts each, collection of {semantic['collection_size']} templates:")
    print(f"{'part':<44} {'p50':>8} {'p95':>8} {'min':>8}")
    for key, label in (("embed", "(a) embed one text (MiniLM, CPU)"),
                       ("knn_query", f"(b) Chroma kNN alone (n_results={n_results})"),
                       ("search", "(c) SemanticIndex.search, k=10 (a + query)")):
        s = semantic[key]
        print(f"{label:<44} {s['p50_ms']:>8.2f} {s['p95_ms']:>8.2f} {s['min_ms']:>8.2f}")
    print()
    print(f"{'check':<46} {'measured':>10} {'target':>10}  result")
    for c in checks:
        print(f"{c['check']:<46} {c['measured_ms']:>8.1f}ms {c['target_ms']:>8.0f}ms  {'PASS' if c['pass'] else 'FAIL'}")
    print()
    rc = rep["root_cause"]
    print(f"sample hybrid report - issue: {rep['issue']!r}")
    print(f"  root cause: {rc.get('summary')}  [category {rc.get('category')}, confidence {rc.get('confidence')}]")
    print(f"  onset {rep['onset']} (truth {truth.get('started_at')}); stats {rep['stats']}")
    for ev in rep["evidence"][:5]:
        print(f"  {ev['id']:<4} {ev['timestamp']} {ev['service']:<26} {ev['level']:<8} {ev['score']:.3f}  "
              f"{str(ev['text'])[:100]}")
    for hit in hits:
        print(f"  search hit: {hit['similarity']:.3f} {hit['service']:<24} {hit['text'][:90]}")
    print(f"  search query for those hits: {search_texts[0]!r}")
    print(f"sane: {'yes' if result['sane'] else 'NO'} (every run's root cause category is {truth['category']!r})")
    for mode, a in result["analyze"].items():
        for miss in a["missed"]:
            print(f"  {mode} missed: {miss}")
    print(f"wall time: {wall:.0f} s (train {phases['train_s']:.0f} s, simulate {phases['simulate_s']:.0f} s, "
          f"ingest {phases['ingest_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
