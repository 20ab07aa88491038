"""Batch scoring throughput of the DeepLog model on 2 CPU cores (issue target: >= 50k records/s).

    python benchmarks/score_throughput.py [--lines 100000] [--repeat 3] [--json]

Trains the default model (a few epochs: speed does not depend on how well it learned) on simulated normal traffic,
then scores a simulated incident of ``--lines`` lines: sessions, windows, the LSTM, per-record scores, importance
and the expected templates. Parsing is excluded (see parse_throughput.py). Also prints the worst case, where no two
windows repeat and every one goes through the LSTM.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from model_training.pipeline import train  # noqa: E402
from openstack_rca import registry, simulate  # noqa: E402
from openstack_rca.config import load  # noqa: E402
from openstack_rca.parse import Parser  # noqa: E402
from openstack_rca.score import build_sessions, windows  # noqa: E402
from openstack_rca.score.deeplog import DeepLogConfig, unique_rows  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(env={"RCA_HOME": f"{tmp}/home"})
        simulate.simulate("none", f"{tmp}/normal", lines=12_000, seed=1)
        simulate.simulate("rabbitmq_outage", f"{tmp}/incident", lines=args.lines, seed=2)
        train([f"{tmp}/normal"], cfg, replace(DeepLogConfig(), epochs=2))
        bundle = registry.load(cfg).bundle
        table = Parser(cfg).parse([f"{tmp}/incident"]).table
        n = table.num_rows
        times = []
        for _ in range(args.repeat + 1):  # the first call warms the BLAS threads and caches; servers pay it once
            t0 = time.perf_counter()
            bundle.score(table)
            times.append(time.perf_counter() - t0)
        s = build_sessions(table)
        X, y, _ = windows(s, bundle.vocab.encode(table["template_id"].to_pylist()), bundle.config.window)
        pairs = len(unique_rows(np.concatenate([X, y[:, None]], axis=1))[0])
        t0 = time.perf_counter()
        bundle.model.probs(X)  # worst case: every window through the LSTM (numpy forward pass)
        raw = time.perf_counter() - t0
    result = {
        "date": date.today().isoformat(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "records": n, "distinct_history_event_pairs": pairs, "model": DeepLogConfig().to_dict(),
        "cold_seconds": times[0], "warm_seconds": min(times[1:]), "records_per_s": n / min(times[1:]),
        "cold_records_per_s": n / times[0], "lstm_windows_per_s_no_dedup": len(X) / raw,
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{n:,} records, {pairs:,} distinct (history, event) pairs, {result['cpus']} CPUs, {result['date']}")
        print(f"score(): {result['records_per_s']:,.0f} records/s warm (best of {args.repeat}), "
              f"{result['cold_records_per_s']:,.0f} records/s on the first call")
        print(f"LSTM alone, every window, no dedup: {result['lstm_windows_per_s_no_dedup']:,.0f} windows/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
