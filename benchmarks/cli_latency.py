"""What a user waits for: the CLI as whole processes (GNU time, cold process, warm OS disk cache), beside the
seed's figures and, with ``--baseline``, an older checkout measured in the same run.

    python benchmarks/cli_latency.py [--repeats 5] [--case nova-347] [--baseline /tmp/old-checkout] [--json out]

Every command runs once untimed (to warm the OS disk cache), then ``--repeats`` times; the table shows the best
and the median wall time and the peak RSS (``/usr/bin/time -f '%e %M'``), and marks each target ok or FAIL.

* ``analyze --logs``: a real fault-injection run of ~10k lines (``--case``, from ../shared/data/fault-injection;
  a simulated 10k-line incident when the data is absent) with the model trained on the dataset's normal runs
  (the simulator's when absent). "new logs" runs with the parsed-record cache off, so every run parses;
  "no embedding cache" also empties the machine's embedding cache before each run (keeping the one-time ONNX
  export), so every template hybrid mode looks at is embedded again; "again" keeps the parsed-record cache, as
  a user re-asking about the same files.
* ``analyze --corpus``: the same run ingested once (untimed), then analysed by name.
* ``ingest``: 100k simulated lines into a fresh corpus each time.
* ``parse``: 200k lines (see benchmarks/parse_cli.py, which this runs): summary, cached re-parse, ``--json``,
  and Drain3 run the same way.

``--baseline DIR`` runs the analyze and ingest commands again with ``PYTHONPATH=DIR`` (e.g. ``git worktree add
/tmp/base <rev>``: the same venv, the older code) and prints the ratio. The seed's figures are the issue's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent

from benchmarks.proc import timed  # noqa: E402

# whole-process seconds (and MB) the issue sets; the seed's where it states them
TARGETS = {
    "analyze --logs, fast, new logs": 2.0, "analyze --logs, hybrid, new logs": 4.0,
    "analyze --logs, hybrid, new logs, no embedding cache": 4.0,
    "analyze --corpus, fast": 1.0, "analyze --corpus, hybrid": 1.5, "ingest 100k lines": 10.0,
}
RSS_TARGET_MB = {"analyze --logs, fast, new logs": 600, "analyze --logs, hybrid, new logs": 600,
                 "analyze --logs, hybrid, new logs, no embedding cache": 600}
SEED = {"analyze --logs, fast, new logs": "3–5 s", "analyze --logs, hybrid, new logs": "15–20 s"}


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("MLFLOW_TRACKING_URI", "CHROMA_HOST", "CHROMA_PORT", "RCA_CONFIG", "ANTHROPIC_API_KEY",
                        "PYTHONPATH")}
    env.update(RCA_HOME=str(home), HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def measure(cmd: list[str], env: dict[str, str], repeats: int, *, prepare=None) -> dict[str, float]:
    (prepare or (lambda: None))()
    timed(cmd, env)  # warm the OS disk cache (and, where the command keeps one, nothing else: see callers)
    runs = []
    for _ in range(repeats):
        (prepare or (lambda: None))()
        runs.append(timed(cmd, env))
    walls = [w for w, _ in runs]
    return {"best_s": round(min(walls), 2), "median_s": round(statistics.median(walls), 2),
            "peak_rss_mb": round(max(r for _, r in runs))}


def model_home(dest: Path, case: str) -> tuple[Path, str, str]:
    """A home holding a trained model; the logs to analyse and the operator's issue."""
    from benchmarks import real_faults as rf

    cases = rf.load_cases(rf.DATA) if rf.DATA.is_dir() else []
    run = next((c for c in cases if c.id == case), None)
    cache = ROOT / ".cache" / "real-faults"
    if run is not None and any(c.kind == "normal" for c in cases):
        cfg, _ = rf.trained_model("a", cache, cases)
        logs, issue = run.logs, run.issue
    else:
        from openstack_rca import simulate

        print(f"note: ../shared/data/fault-injection (case {case}) absent: a simulated 10k-line incident and the "
              "simulator's model stand in", file=sys.stderr)
        cfg, _ = rf.trained_model("b", cache, [])
        logs = dest / "sim-logs"
        simulate.simulate("libvirt_domain_failure", logs, lines=10_000, seed=7)
        issue = "instances fail to boot on compute-2"
    shutil.copytree(cfg.home, dest / "home", ignore=shutil.ignore_patterns("normal-logs"))
    return dest / "home", str(logs), issue


def _embedding_export(dest: Path) -> bool:
    """A cache dir holding only this machine's verified ONNX export (made once per machine), no vectors."""
    from openstack_rca.config import RetrievalConfig

    src = RetrievalConfig().cache_path() / "embeddings"
    (dest / "embeddings").mkdir(parents=True, exist_ok=True)
    files = [f for f in src.glob("*") if f.suffix in (".onnx", ".json")]
    for f in files:
        shutil.copy2(f, dest / "embeddings" / f.name)
    return bool(files)


def count_lines(root: str) -> int:
    import bz2
    import gzip

    opener = {".gz": gzip.open, ".bz2": bz2.open, ".bzip2": bz2.open}
    n = 0
    for f in sorted(Path(root).rglob("*")):
        if f.is_file() and f.suffix != ".json":
            with opener.get(f.suffix, open)(f, "rb") as fh:
                n += sum(1 for _ in fh)
    return n


def run(repeats: int, case: str, baseline: Path | None, skip_parse: bool) -> dict:
    out: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="rca-cli-bench-") as tmp:
        tmp = Path(tmp)
        home, logs, issue = model_home(tmp, case)
        out["setup"] = {"case": case, "logs_lines": count_lines(logs), "issue": issue}
        rca = str(BIN / "rca")
        big = tmp / "ingest-100k"
        subprocess.run([rca, "simulate", "--fault", "rabbitmq_outage", "--out", str(big), "--lines", "100000",
                        "--seed", "3"], env=_env(home), check=True, stdout=subprocess.DEVNULL)

        def suite(label: str, extra_env: dict[str, str]) -> dict[str, dict]:
            res: dict[str, dict] = {}
            nocache = _env(home, RCA_CACHE_ENABLED="false", **extra_env)
            cached = _env(home, **extra_env)
            a = [rca, "analyze", "--issue", issue, "--json", "--no-narrative"]
            res["analyze --logs, fast, new logs"] = measure([*a, "--fast-mode", "--logs", logs], nocache, repeats)
            res["analyze --logs, hybrid, new logs"] = measure([*a, "--logs", logs], nocache, repeats)
            if not extra_env:  # the machine's embedding cache emptied before each run (the ONNX export kept)
                cold = tmp / "embed-cache"
                keep = _embedding_export(cold)
                res["analyze --logs, hybrid, new logs, no embedding cache"] = measure(
                    [*a, "--logs", logs], {**nocache, "RCA_RETRIEVAL_CACHE_DIR": str(cold)}, repeats,
                    prepare=lambda: [f.unlink() for f in (cold / "embeddings").glob("vectors.sqlite3*")] if keep
                    else None)
            res["analyze --logs, fast, again"] = measure([*a, "--fast-mode", "--logs", logs], cached, repeats)
            res["analyze --logs, hybrid, again"] = measure([*a, "--logs", logs], cached, repeats)
            subprocess.run([rca, "ingest", logs, "--corpus", "bench"], env=cached, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            res["analyze --corpus, fast"] = measure([*a, "--fast-mode", "--corpus", "bench"], cached, repeats)
            res["analyze --corpus, hybrid"] = measure([*a, "--corpus", "bench"], cached, repeats)
            res["ingest 100k lines"] = measure([rca, "ingest", str(big), "--corpus", "big", "--json"], nocache,
                                               max(1, min(repeats, 3)))
            for k, v in res.items():
                print(f"  {label:9s} {k:36s} best {v['best_s']:6.2f} s  median {v['median_s']:6.2f} s  "
                      f"peak {v['peak_rss_mb']:5.0f} MB", file=sys.stderr, flush=True)
            return res

        out["now"] = suite("now", {})
        if baseline is not None:
            out["baseline"] = suite("baseline", {"PYTHONPATH": str(baseline)})
        if not skip_parse:
            from benchmarks import parse_cli

            out["parse"] = parse_cli.run(repeats=repeats)
    out["setup"].update(repeats=repeats, baseline=str(baseline or ""), cpus=os.cpu_count(),
                        load_avg=os.getloadavg())
    return out


def report(res: dict) -> str:
    lines = ["| command (whole process) | best | median | peak RSS | target | seed |"
             + (" baseline best | speed-up |" if "baseline" in res else ""),
             "|---|---|---|---|---|---|" + ("---|---|" if "baseline" in res else "")]
    for k, v in res["now"].items():
        tgt = TARGETS.get(k)
        rss_t = RSS_TARGET_MB.get(k)
        ok = "" if tgt is None else (" ok" if v["best_s"] <= tgt and (rss_t is None or v["peak_rss_mb"] <= rss_t)
                                     else " FAIL")
        target = "" if tgt is None else f"≤ {tgt:g} s" + (f", ≤ {rss_t} MB" if rss_t else "") + ok
        row = f"| {k} | {v['best_s']:.2f} s | {v['median_s']:.2f} s | {v['peak_rss_mb']:.0f} MB | {target} | " \
              f"{SEED.get(k, '')} |"
        if "baseline" in res:
            b = res["baseline"][k]
            row += f" {b['best_s']:.2f} s | {b['best_s'] / v['best_s']:.1f}× |"
        lines.append(row)
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--case", default="nova-347", help="fault-injection run to analyse (about 11k lines)")
    ap.add_argument("--baseline", type=Path, help="an older checkout to measure the same way, in the same run")
    ap.add_argument("--skip-parse", action="store_true", help="only analyze and ingest")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    res = run(args.repeats, args.case, args.baseline, args.skip_parse)
    su = res["setup"]
    print(f"case {su['case']} ({su['logs_lines']:,} lines), {su['cpus']} CPUs, load average "
          f"{su['load_avg'][0]:.1f} at the end; best and median of {su['repeats']} cold processes")
    print(report(res))
    if "parse" in res:
        from benchmarks import parse_cli

        print()
        print(parse_cli.report(res["parse"]))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
