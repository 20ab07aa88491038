"""Diagnosis on real OpenStack failures, against the grep an operator would run instead.

    python benchmarks/real_faults.py [--data ../shared/data/fault-injection] [--models a b] [--modes fast hybrid]
                                     [--cases nova-44,cinder-14] [--json out.json] [--markdown]

The yardstick is the fault-injection dataset of Cotroneo et al. (ESEC/FSE 2019) in ../shared: real runs of an
all-in-one OpenStack in which one bug was injected into one nova/cinder/neutron source file. Each failure case
says which file was mutated, when the injected code first ran, and what the workload's user saw (the issue).

The engine (``Analyzer.analyze``, exactly what ``rca analyze`` runs) is asked each case's issue under two models:
(a) trained on the dataset's fault-free ``normal`` runs (this deployment), (b) trained on the simulator (another
deployment, what ``make demo`` trains), in fast and hybrid mode. In the same run, three grep baselines read the
same parsed records: the first ERROR at/after the activation, the most frequent ERROR template, the first
ERROR/traceback of the run ("ERROR" = a record at ERROR/CRITICAL or carrying a traceback, what ``grep ERROR``
finds in oslo logs, whose traceback lines are ERROR-prefixed).

Per failure: subsystem@1 (the root cause's service belongs to the faulty project), module@1 / module@3 (the root
cause's, resp. one of the top 3 findings', logger module or traceback frame is the mutated file), root cause
at/after the activation (1 s of timestamp rounding allowed), confidence. Totals over all failures and over those
whose faulty subsystem logged WARNING or worse (housekeeping included) after the activation. Controls (a fault
injected, the workload succeeded) and loghub's OpenStack_2k (no failure) with three issues it does not contain
give the false-alarm rate: a root cause named with confidence >= 0.3.

Models are trained once and kept under ``--home`` (default .cache/real-faults); the data is read in place, never
copied.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
for _var in ("MLFLOW_TRACKING_URI", "CHROMA_HOST", "CHROMA_PORT", "CHROMA_TOKEN", "RCA_CONFIG", "ANTHROPIC_API_KEY"):
    os.environ.pop(_var, None)

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402

from openstack_rca.diagnose.code import modules_named  # noqa: E402
from openstack_rca.diagnose.engine import NO_EVIDENCE  # noqa: E402
from openstack_rca.diagnose.housekeeping import TRACEBACK  # noqa: E402
from openstack_rca.parse.timestamps import to_epoch  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "fault-injection"
LOGHUB = ROOT.parent / "shared" / "data" / "loghub" / "OpenStack_2k.log"
LOGHUB_ISSUES = ("Database timeout errors since 10:00", "instances fail to boot",
                 "volume attach fails with an API error (HTTP 500)")
MODELS = {"a": "trained on the dataset's normal runs", "b": "trained on the simulator (another deployment)"}
BASELINES = {"grep_after": "first ERROR at/after activation", "grep_frequent": "most frequent ERROR template",
             "grep_first": "first ERROR/traceback of the run"}
ROUNDING_S = 1.0
BUCKETS = ((0.0, 0.3), (0.3, 0.5), (0.5, 0.7), (0.7, 0.9), (0.9, 1.01))


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # failure | control | normal | loghub
    subsystem: str | None
    mutated: str | None  # nova/compute/manager.py
    activated: float | None  # epoch seconds on the logs' clock
    issue: str | None
    logs: Path


def load_cases(data: Path = DATA, only: Iterable[str] | None = None) -> list[Case]:
    if not (data / "cases").is_dir():
        raise FileNotFoundError(f"no fault-injection cases under {data} (expected ../shared/data/fault-injection)")
    wanted = set(only) if only else None
    out = []
    for d in sorted((data / "cases").iterdir()):
        meta = json.loads((d / "case.json").read_text())
        if wanted and meta["id"] not in wanted:
            continue
        act = meta.get("fault_activated_at")
        fault = meta.get("fault") or {}
        out.append(Case(meta["id"], meta["kind"], meta.get("subsystem"), (fault.get("file") or "").lstrip("/") or None,
                        datetime.fromisoformat(act).timestamp() if act else None, meta.get("issue"), d / "logs"))
    return out


# -- judging a pick ----------------------------------------------------------------------------------------------
def subsystem_of(service: str | None) -> str | None:
    return service.split("-", 1)[0] if service else None


class Judge:
    """Answers the questions of one case about records of its parsed table."""

    def __init__(self, case: Case, table: pa.Table):
        self.case, self.table = case, table
        self.epoch = to_epoch(table["timestamp"])
        self._where = {(s, n): i for i, (s, n) in enumerate(zip(table["source"].to_pylist(),
                                                                table["line_no"].to_pylist()))}

    def row(self, source: str, line_no: int) -> int | None:
        return self._where.get((source, line_no))

    def module_hit(self, row: int | None) -> bool:
        if row is None or not self.case.mutated:
            return False
        t = self.table
        mods = modules_named(t["raw"][row].as_py() or "", t["message"][row].as_py() or "", t["component"][row].as_py())
        return any(m.endswith(self.case.mutated) or self.case.mutated.endswith(m) for m in mods)

    def subsystem_hit(self, row: int | None) -> bool:
        return row is not None and subsystem_of(self.table["service"][row].as_py()) == self.case.subsystem

    def after(self, row: int | None) -> bool | None:
        if row is None or self.case.activated is None or not np.isfinite(self.epoch[row]):
            return None
        return bool(self.epoch[row] >= self.case.activated - ROUNDING_S)

    def faulty_logged(self) -> bool:
        """The faulty subsystem logged WARNING or worse at/after the activation (unknown activation: no)."""
        if self.case.activated is None:
            return False
        t = self.table
        lv = t["level"].to_numpy(zero_copy_only=False)
        svc = [subsystem_of(s) for s in t["service"].to_pylist()]
        bad = np.isin(lv, ["WARNING", "ERROR", "CRITICAL"]) | self.errors()
        mine = np.array([s == self.case.subsystem for s in svc])
        return bool((bad & mine & (self.epoch >= self.case.activated - ROUNDING_S)).any())

    def errors(self) -> np.ndarray:
        lv = self.table["level"].to_numpy(zero_copy_only=False)
        tb = pc.match_substring(pc.fill_null(self.table["raw"], ""), TRACEBACK).to_numpy(zero_copy_only=False)
        return np.isin(lv, ["ERROR", "CRITICAL"]) | tb

    def verdict(self, picks: list[int | None], confidence: float | None = None) -> dict[str, Any]:
        root = picks[0] if picks else None
        named = confidence is None or confidence >= NO_EVIDENCE
        top = [r for r in picks[:3] if r is not None]
        return {"subsystem@1": named and self.subsystem_hit(root), "module@1": named and self.module_hit(root),
                "module@3": named and any(self.module_hit(r) for r in top),
                "after": self.after(root) if named else None,
                "named": named, "confidence": confidence}


def grep_baselines(j: Judge) -> dict[str, list[int | None]]:
    """Top-3 picks of each grep baseline (distinct templates), from the records alone."""
    t = j.table
    err = np.flatnonzero(j.errors())
    tpl = t["template_id"].to_pylist()
    when = np.where(np.isfinite(j.epoch), j.epoch, np.inf)
    by_time = err[np.lexsort((err, when[err]))]

    def distinct(rows: Iterable[int]) -> list[int | None]:
        out, seen = [], set()
        for r in rows:
            if tpl[r] not in seen:
                seen.add(tpl[r])
                out.append(int(r))
            if len(out) == 3:
                break
        return out or [None]

    after = by_time if j.case.activated is None else by_time[when[by_time] >= j.case.activated - ROUNDING_S]
    freq = Counter(tpl[r] for r in err)
    first_of = {}
    for r in by_time:
        first_of.setdefault(tpl[r], int(r))
    frequent = [first_of[k] for k, _ in sorted(freq.items(), key=lambda kv: (-kv[1], first_of[kv[0]]))]
    return {"grep_after": distinct(after), "grep_frequent": distinct(frequent), "grep_first": distinct(by_time)}


# -- models --------------------------------------------------------------------------------------------------------
def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.blake2b(digest_size=8)
    for p in sorted(paths):
        h.update(str(p.relative_to(p.parents[2])).encode())
        h.update(str(p.stat().st_size).encode())
    return h.hexdigest()


def trained_model(which: str, home: Path, cases: list[Case], *, epochs: int | None = None):
    """(cfg, loaded) of model ``which``, trained once per data and kept under ``home``."""
    from model_training.pipeline import train
    from openstack_rca import registry, simulate
    from openstack_rca.config import load
    from openstack_rca.score.deeplog import DeepLogConfig

    if which == "a":
        normal = [c.logs for c in cases if c.kind == "normal"]
        if not normal:
            raise ValueError("model a needs the dataset's normal runs")
        key = _digest([f for d in normal for f in d.rglob("*.gz")])
        paths = normal
    else:
        key, paths = "simulator-12000-seed1", None
    mhome = home / f"model-{which}-{key}{'-e' + str(epochs) if epochs else ''}"
    cfg = load(env={"RCA_HOME": str(mhome)})
    if not (mhome / "models").is_dir():
        if paths is None:
            simulate.simulate("none", mhome / "normal-logs", lines=12_000, seed=1)
            paths = [mhome / "normal-logs"]
        train(paths, cfg, DeepLogConfig(window=cfg.model.window, top_g=cfg.model.top_g,
                                        epochs=epochs or cfg.model.epochs, seed=0))
    return cfg, registry.load(cfg)


# -- running -------------------------------------------------------------------------------------------------------
def run(cases: list[Case], models: list[str], modes: list[str], home: Path, *, loghub: Path | None = LOGHUB,
        epochs: int | None = None, progress=print) -> dict[str, Any]:
    from openstack_rca.analyze import Analyzer
    from openstack_rca.config import load
    from openstack_rca.parse import Parser

    parse_cfg = load(env={"RCA_HOME": str(home / "parse")})
    tables = {c.id: Parser(parse_cfg).parse([c.logs]).table for c in cases if c.kind in ("failure", "control")}
    judges = {cid: Judge(next(c for c in cases if c.id == cid), t) for cid, t in tables.items()}
    lh = Parser(parse_cfg).parse([loghub]).table if loghub and loghub.is_file() else None
    results: dict[str, Any] = {"cases": {}, "baselines": {}, "engine": {}}
    for cid, j in judges.items():
        results["cases"][cid] = {"kind": j.case.kind, "subsystem": j.case.subsystem, "mutated": j.case.mutated,
                                 "issue": j.case.issue, "faulty_logged": j.faulty_logged(),
                                 "activation_known": j.case.activated is not None}
        if j.case.kind == "failure":
            results["baselines"][cid] = {name: j.verdict(picks) for name, picks in grep_baselines(j).items()}
    for which in models:
        cfg, loaded = trained_model(which, home, cases, epochs=epochs)
        analyzer = Analyzer(cfg.replace(home=home / "analyze"), loaded=loaded)
        for mode in modes:
            key = f"{which}/{mode}"
            out = results["engine"][key] = {}
            for cid, j in judges.items():
                t0 = time.perf_counter()
                rep = analyzer.analyze(j.case.issue, table=tables[cid], mode=mode, narrate=False)
                picks = [j.row(ev["source"], ev["line_no"]) for ev in rep["evidence"]]
                conf = float(rep["root_cause"]["confidence"])
                v = j.verdict(picks, conf)
                ev0 = rep["evidence"][0] if rep["evidence"] else {}
                v.update(mode_used=rep["mode"], seconds=round(time.perf_counter() - t0, 2),
                         root=(ev0.get("service"), (ev0.get("text") or "")[:120]) if v["named"] else None,
                         category=rep["root_cause"].get("category"))
                out[cid] = v
                progress(f"{key} {cid:12s} conf {conf:.2f} sub {int(v['subsystem@1'])} mod {int(v['module@1'])}/"
                         f"{int(v['module@3'])} after {v['after']} | {v['root']}")
            if lh is not None:
                for q in LOGHUB_ISSUES:
                    rep = analyzer.analyze(q, table=lh, mode=mode, narrate=False)
                    conf = float(rep["root_cause"]["confidence"])
                    out[f"loghub: {q}"] = {"named": conf >= NO_EVIDENCE, "confidence": conf}
                    progress(f"{key} loghub '{q}' conf {conf:.2f}")
    results["summary"] = summarise(results)
    return results


def _rate(vals: list) -> float | None:
    vals = [v for v in vals if v is not None]
    return round(sum(map(bool, vals)) / len(vals), 3) if vals else None


def summarise(results: dict[str, Any]) -> dict[str, Any]:
    cases = results["cases"]
    fails = [c for c, m in cases.items() if m["kind"] == "failure"]
    logged = [c for c in fails if cases[c]["faulty_logged"]]
    out: dict[str, Any] = {"failures": len(fails), "failures_logged": len(logged), "rows": {}}
    metrics = ("subsystem@1", "module@1", "module@3", "after")

    def block(per: dict[str, dict], ids: list[str]) -> dict[str, Any]:
        return {m: _rate([per[c][m] for c in ids if c in per]) for m in metrics}

    for name in BASELINES:
        per = {c: results["baselines"][c][name] for c in fails}
        out["rows"][name] = {"all": block(per, fails), "logged": block(per, logged)}
    for key, per in results["engine"].items():
        controls = [c for c, m in cases.items() if m["kind"] == "control" and c in per]
        alarms = controls + [k for k in per if k.startswith("loghub: ")]
        out["rows"][key] = {
            "all": block(per, fails), "logged": block(per, logged),
            "false_alarms": _rate([per[c]["named"] for c in alarms]), "false_alarm_checks": len(alarms),
            "reliability": reliability(per, cases),
        }
    return out


def reliability(per: dict[str, dict], cases: dict[str, dict]) -> list[dict[str, Any]]:
    """Confidence bucket -> share of correct answers: a failure's root cause names the faulty subsystem (at/after
    the activation when it is known); a control or no-failure log is answered correctly only with no root cause."""
    rows = []
    for lo, hi in BUCKETS:
        ok = n = 0
        for cid, v in per.items():
            conf = v["confidence"] or 0.0
            if not lo <= conf < hi:
                continue
            n += 1
            kind = cases.get(cid, {}).get("kind", "loghub")
            if kind == "failure":
                ok += bool(v["subsystem@1"] and v["after"] is not False)
            else:
                ok += not v["named"]
        rows.append({"confidence": f"{lo:.1f}–{min(hi, 1.0):.1f}", "answers": n, "correct": ok,
                     "share": round(ok / n, 2) if n else None})
    return rows


def markdown(summary: dict[str, Any]) -> str:
    def f(x):
        return "–" if x is None else f"{x:.2f}"

    lines = [f"Failures: {summary['failures']} ({summary['failures_logged']} whose faulty subsystem logged WARNING+ "
             "after the activation).", "",
             "| method | subsystem@1 | module@1 | module@3 | at/after activation | false alarms |",
             "|---|---|---|---|---|---|"]
    for key, row in summary["rows"].items():
        label = BASELINES.get(key) or f"engine, model {key.split('/')[0]} ({key.split('/')[1]})"
        a, lg = row["all"], row["logged"]
        fa = f"{f(row['false_alarms'])} of {row['false_alarm_checks']}" if "false_alarms" in row else "–"
        lines.append(f"| {label} | {f(lg['subsystem@1'])} ({f(a['subsystem@1'])}) | {f(lg['module@1'])} "
                     f"({f(a['module@1'])}) | {f(lg['module@3'])} ({f(a['module@3'])}) | {f(lg['after'])} "
                     f"({f(a['after'])}) | {fa} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--loghub", type=Path, default=LOGHUB)
    ap.add_argument("--home", type=Path, default=ROOT / ".cache" / "real-faults")
    ap.add_argument("--models", nargs="+", default=["a", "b"], choices=sorted(MODELS))
    ap.add_argument("--modes", nargs="+", default=["fast", "hybrid"], choices=["fast", "hybrid"])
    ap.add_argument("--cases", default="", help="comma-separated case ids (default: all)")
    ap.add_argument("--json", type=Path, help="write every verdict and the summary here")
    ap.add_argument("--markdown", action="store_true", help="print the summary as a Markdown table")
    args = ap.parse_args()
    try:
        cases = load_cases(args.data, [c for c in args.cases.split(",") if c] or None)
    except FileNotFoundError as exc:
        print(f"real_faults: {exc}", file=sys.stderr)
        return 2
    res = run(cases, args.models, args.modes, args.home, loghub=args.loghub)
    if args.json:
        args.json.write_text(json.dumps(res, indent=1, default=str))
    s = res["summary"]
    print(markdown(s))
    for key, row in s["rows"].items():
        if "reliability" in row:
            print(f"\nreliability, {key}: " + ", ".join(f"{r['confidence']}: {r['correct']}/{r['answers']}"
                                                         for r in row["reliability"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
