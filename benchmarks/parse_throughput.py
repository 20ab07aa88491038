"""Parsing throughput on a 200k-line OpenStack corpus, measured against Drain3 in the same run.

    python benchmarks/parse_throughput.py [--copies 100] [--repeat 3] [--json]

The corpus is loghub's OpenStack_2k scaled ×copies with fresh UUIDs, request ids and numbers per copy (no line
repeats). openstack-rca parses full lines from a file on disk (read, decode, header fields, context ids, service,
multi-line joining, template and id), cache off; Drain3 gets the pre-extracted Content column only. Best of
``--repeat`` runs for each, so a noisy neighbour does not decide the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loghub import UUID_HEX_MASKS, drain3_miner, require_loghub, scaled_corpus  # noqa: E402
from openstack_rca.config import load  # noqa: E402
from openstack_rca.parse import Parser  # noqa: E402
from openstack_rca.parse import masking  # noqa: E402
from openstack_rca.parse.layouts import BY_NAME  # noqa: E402


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    require_loghub()
    lines = scaled_corpus(args.copies)
    n = len(lines)
    unique = len(set(lines))
    prefixed = BY_NAME["oslo_prefixed"].regex
    contents = [prefixed.match(line).groups()[-1] for line in lines]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "openstack_200k.log"
        corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
        for workers in (os.cpu_count() or 1, 1):
            cfg = load(env={"RCA_HOME": str(Path(tmp) / "home"), "RCA_PARSE_WORKERS": str(workers),
                            "RCA_CACHE_ENABLED": "0", "RCA_PARSE_LEARN_TEMPLATES": "0"})
            result = {}
            parser = Parser(cfg)

            def run() -> None:
                result["r"] = parser.parse([corpus])

            secs = best(run, args.repeat)
            assert result["r"].table.num_rows == n, "every line must become a record"
            rows.append({"parser": f"openstack-rca, {workers} process{'es' if workers > 1 else ''}",
                         "input": "full lines", "seconds": secs, "lines_per_s": n / secs})

    def drain() -> None:
        miner = drain3_miner(UUID_HEX_MASKS)
        for c in contents:
            miner.add_log_message(c)

    secs = best(drain, args.repeat)
    rows.append({"parser": "Drain3 0.9.11 (+UUID/hex masks)", "input": "content only", "seconds": secs,
                 "lines_per_s": n / secs})
    drain_rate = rows[-1]["lines_per_s"]
    for r in rows:
        r["vs_drain3"] = r["lines_per_s"] / drain_rate
    meta = {"date": date.today().isoformat(), "lines": n, "unique_lines": unique, "cpus": os.cpu_count(),
            "python": platform.python_version(), "machine": platform.machine(),
            "c_speedups": masking.ACCELERATED}
    if args.json:
        print(json.dumps({**meta, "results": rows}, indent=2))
    else:
        print(f"{n} lines ({unique} unique), {meta['cpus']} CPUs, Python {meta['python']}, {meta['date']}, "
              f"C speedups {'on' if meta['c_speedups'] else 'off (regex fallback)'}")
        print(f"{'parser':<34} {'input':<13} {'seconds':>8} {'lines/s':>10} {'vs Drain3':>10}")
        for r in rows:
            print(f"{r['parser']:<34} {r['input']:<13} {r['seconds']:>8.2f} {r['lines_per_s']:>10,.0f} {r['vs_drain3']:>9.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
