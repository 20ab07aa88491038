"""Anomalous-session detection on every simulated fault, and false positives on normal logs (loghub included).

    python benchmarks/evaluation.py [--train-lines 20000] [--lines 4000] [--seeds 1 2] [--json]

Trains the default model on simulated normal traffic (one seed), then runs the same evaluation as
``rca evaluate`` on fresh simulations of each fault (other seeds) and on normal logs it never saw: a simulated
`none` set and loghub's OpenStack_2k (real nova traffic from another deployment, if ../shared has it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loghub import LOG  # noqa: E402
from model_training.evaluate import evaluate  # noqa: E402
from model_training.pipeline import train  # noqa: E402
from openstack_rca import registry, simulate  # noqa: E402
from openstack_rca.config import load  # noqa: E402
from openstack_rca.score.deeplog import DeepLogConfig  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train-lines", type=int, default=20_000)
    ap.add_argument("--lines", type=int, default=4_000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cfg = load(env={"RCA_HOME": f"{tmp}/home"})
        simulate.simulate("none", f"{tmp}/train", lines=args.train_lines, seed=1)
        # the defaults `rca train` uses
        trained = train([f"{tmp}/train"], cfg, DeepLogConfig(window=cfg.model.window, top_g=cfg.model.top_g,
                                                             epochs=cfg.model.epochs))
        for seed in args.seeds:
            for fault in simulate.FAULTS:
                simulate.simulate(fault, f"{tmp}/eval/{fault}-{seed}", lines=args.lines, seed=seed)
        paths = [Path(f"{tmp}/eval")] + ([LOG] if LOG.is_file() else [])
        rows = evaluate(paths, cfg, registry.load(cfg))
    for r in rows:
        if r["dataset"].endswith("OpenStack_2k.log"):
            r["fault"] = "normal (loghub OpenStack_2k)"
        r.pop("dataset")
    agg: dict[str, dict] = {}
    for r in rows:  # pool the seeds per fault
        a = agg.setdefault(r["fault"], {"runs": 0, "sessions": 0, "anomalous_sessions": 0, "flagged_sessions": 0,
                                        "precision": [], "recall": [], "f1": [], "false_positive_rate": []})
        a["runs"] += 1
        for k in ("sessions", "anomalous_sessions", "flagged_sessions"):
            a[k] += r[k]
        for k in ("precision", "recall", "f1", "false_positive_rate"):
            if r[k] is not None:
                a[k].append(r[k])
    table = [{"fault": f, **{k: (sum(v) / len(v) if v else None) if isinstance(v, list) else v for k, v in a.items()}}
             for f, a in agg.items()]
    out = {"training": {"version": trained["version"], "metrics": trained["metrics"], "lines": args.train_lines},
           "seeds": args.seeds, "lines": args.lines, "results": table}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        m = trained["metrics"]
        print(f"trained on {args.train_lines} normal lines: held-out top-g accuracy {m['top_g_accuracy']:.3f}, "
              f"session FPR {m['session_false_positive_rate']:.3f}; evaluated on seeds {args.seeds}, {args.lines} lines each")
        print(f"{'fault':<32} {'sessions':>8} {'anomalous':>9} {'flagged':>8} {'precision':>9} {'recall':>7} {'F1':>6} {'FPR':>6}")

        def f(x):
            return "-" if x is None else f"{x:.3f}"

        for r in table:
            print(f"{r['fault']:<32} {r['sessions']:>8} {r['anomalous_sessions']:>9} {r['flagged_sessions']:>8} "
                  f"{f(r['precision']):>9} {f(r['recall']):>7} {f(r['f1']):>6} {f(r['false_positive_rate']):>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
