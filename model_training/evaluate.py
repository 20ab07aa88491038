"""``evaluate``: how well the champion model separates anomalous sessions from normal ones.

For each log set with a ``ground_truth.json`` (the simulator writes one) a session is *truly* anomalous when it
holds a root-cause or symptom line, or belongs to an affected instance or request; it is *flagged* when any of its
events falls outside the model's top-g. Log sets without ground truth (loghub's OpenStack_2k, `--fault none`) are
normal traffic: every flagged session there is a false positive.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np

from openstack_rca.config import RCAConfig
from openstack_rca.parse import Parser
from openstack_rca.registry import LoadedModel
from openstack_rca.score import build_sessions


def _datasets(paths: Iterable) -> list[tuple[Path, dict | None]]:
    out = []
    for p in map(Path, paths):
        truths = sorted(p.rglob("ground_truth.json")) if p.is_dir() else []
        if truths:
            out.extend((t.parent, json.loads(t.read_text())) for t in truths)
        else:
            out.append((p, None))
    return out


def evaluate(paths: Iterable, cfg: RCAConfig, model: LoadedModel) -> list[dict]:
    rows = []
    parser = Parser(cfg)
    for root, truth in _datasets(paths):
        table = parser.parse([root]).table
        if table.num_rows == 0:
            continue
        scores = model.bundle.score(table)
        flag = scores["anomalous"].to_numpy(zero_copy_only=False)
        s = build_sessions(table)
        flagged = np.array([flag[s.rows(k)].any() for k in range(len(s))])
        positive = np.zeros(len(s), bool)
        fault = None
        if truth is not None:
            fault = truth.get("fault")
            sources = [Path(x) for x in table["source"].to_pylist()]
            lines = table["line_no"].to_pylist()
            refs = {(r["file"], r["line"]) for r in truth.get("root_cause", []) + truth.get("symptoms", [])}
            hit_rows = {i for i, (src, ln) in enumerate(zip(sources, lines))
                        if (src.relative_to(root).as_posix() if src.is_relative_to(root) else src.name, ln) in refs}
            affected = truth.get("affected", {})
            keys = {f"instance:{i}" for i in affected.get("instances", [])} | {
                f"request:{r}" for r in affected.get("requests", [])}
            for k in range(len(s)):
                if s.keys[k] in keys or hit_rows.intersection(s.rows(k).tolist()):
                    positive[k] = True
        tp = int((flagged & positive).sum())
        fp = int((flagged & ~positive).sum())
        fn = int((~flagged & positive).sum())
        negatives = int((~positive).sum())
        precision = recall = f1 = None  # undefined on normal traffic: there is nothing to find
        if positive.any():
            precision = tp / (tp + fp) if tp + fp else 0.0
            recall = tp / (tp + fn)
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({
            "dataset": str(root), "fault": fault or "normal", "sessions": len(s), "anomalous_sessions": int(positive.sum()),
            "flagged_sessions": int(flagged.sum()), "precision": precision, "recall": recall, "f1": f1,
            "false_positive_rate": fp / negatives if negatives else None,
        })
    return rows
