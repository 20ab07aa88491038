"""Grouping accuracy on loghub's OpenStack_2k against its ground truth, side by side with Drain3.

    python benchmarks/parse_accuracy.py [--json]

Drain3 runs with the loghub benchmark's OpenStack settings (depth 5, similarity 0.5, its three masks), then with
UUID and hex masks added; it sees only the Content column. openstack-rca parses the full lines, headers included.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loghub import BENCHMARK_MASKS, LOG, UUID_HEX_MASKS, drain3_miner, ground_truth, require_loghub  # noqa: E402
from openstack_rca.config import load  # noqa: E402
from openstack_rca.parse import parse_paths  # noqa: E402
from openstack_rca.parse.evaluation import grouping_accuracy  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    require_loghub()
    rows = ground_truth()
    truth = [r["EventId"] for r in rows]
    results = []
    with tempfile.TemporaryDirectory() as home:
        cfg = load(env={"RCA_HOME": home})
        t0 = time.perf_counter()
        res = parse_paths([LOG], cfg, use_cache=False)
        dt = time.perf_counter() - t0
        pred = res.table["template_id"].to_pylist()
        results.append(
            {"parser": "openstack-rca", "input": "full lines", "templates": len(set(pred)),
             "grouping_accuracy": grouping_accuracy(pred, truth), "seconds": dt}
        )
    for name, masks in (("Drain3 (benchmark masks)", BENCHMARK_MASKS), ("Drain3 (+UUID/hex masks)", UUID_HEX_MASKS)):
        miner = drain3_miner(masks)
        t0 = time.perf_counter()
        ids = [miner.add_log_message(r["Content"])["cluster_id"] for r in rows]
        dt = time.perf_counter() - t0
        results.append(
            {"parser": name, "input": "content only", "templates": len(set(ids)),
             "grouping_accuracy": grouping_accuracy(ids, truth), "seconds": dt}
        )
    if args.json:
        print(json.dumps({"dataset": "loghub OpenStack_2k", "lines": len(rows), "ground_truth_events": len(set(truth)),
                          "results": results}, indent=2))
    else:
        print(f"loghub OpenStack_2k: {len(rows)} lines, {len(set(truth))} ground-truth events")
        print(f"{'parser':<28} {'input':<13} {'templates':>9} {'GA':>7}")
        for r in results:
            print(f"{r['parser']:<28} {r['input']:<13} {r['templates']:>9} {r['grouping_accuracy']:>7.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
