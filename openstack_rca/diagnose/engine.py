"""diagnose: scored records + the issue -> ranked evidence, root cause, timeline, affected, confidence.

Pure computation on what earlier layers produced (the parsed table, the model's scores, optional semantic
similarities); no I/O, so the CLI, the service and the dashboard get the same answer from the same inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..parse.timestamps import iso, to_epoch
from ..score.bundle import ModelBundle
from ..score.sessions import session_keys
from . import causal
from .categories import classify
from .clusters import Clusters, build_clusters
from .issue import Issue
from .lexical import coverage

NO_EVIDENCE = 0.3  # below this confidence the report says the logs do not support the issue
SEMANTIC_FLOOR, SEMANTIC_SPAN = 0.25, 0.3  # MiniLM cosine: unrelated sentences reach ~0.25; >= 0.55 the same symptom


@dataclass
class Diagnosis:
    evidence: list[dict[str, Any]]
    root_cause: dict[str, Any]
    timeline: list[dict[str, Any]]
    affected: dict[str, list[str]]
    onset: float | None
    stats: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)


def _plain(template: str) -> str:
    return " ".join(w for w in template.replace("<*>", " ").split())


def relevance_signals(bundle: ModelBundle, issue: Issue, c: Clusters,
                      semantic: Mapping[str, float] | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per cluster: TF-IDF cosine to the (expanded) issue, semantic similarity (0 when absent), and the two
    combined into one 0..1 relevance."""
    texts = [_plain(t) for t in c.template]
    tfidf = coverage(bundle.tfidf, issue, texts)
    sem = np.array([float(semantic.get(t, 0.0)) for t in c.template_id]) if semantic else np.zeros(len(c))
    sem_rel = np.clip((sem - SEMANTIC_FLOOR) / SEMANTIC_SPAN, 0.0, 1.0)
    lex_rel = np.clip(tfidf / 0.5, 0.0, 1.0)
    rel = np.maximum(lex_rel, sem_rel) if semantic else lex_rel
    return tfidf, sem, rel


def diagnose(table: pa.Table, scores: pa.Table, bundle: ModelBundle, issue: Issue, *,
             semantic: Mapping[str, float] | None = None, top_k: int = 10) -> Diagnosis:
    if table.num_rows == 0:
        return Diagnosis([], _no_evidence(issue, "the logs hold no records"), [], _empty_affected(), None)
    epoch = to_epoch(table["timestamp"])
    skeys = pc.dictionary_encode(session_keys(table))
    scodes = skeys.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    tid = pc.dictionary_encode(table["template_id"].combine_chunks())
    encoded = bundle.vocab.encode(tid.dictionary.to_pylist())[tid.indices.to_numpy(zero_copy_only=False)]
    c = build_clusters(table, scores, epoch, scodes, train_counts=bundle.counts, encoded=encoded,
                       train_total=int(bundle.counts.sum()))
    near = causal.near_known(c.template, list(bundle.vocab.templates.values()))
    susp = causal.suspicion(c, near)
    tfidf, sem, rel = relevance_signals(bundle, issue, c, semantic)

    finite = epoch[np.isfinite(epoch)]
    since = issue.since(float(finite.max()) if len(finite) else None)
    found = causal.incidents(c, susp)
    incident = causal.pick_incident(found, rel, since)
    onset = incident.onset if incident else (since if since is not None else np.nan)
    w = causal.onset_weight(c.first_ts, onset)
    score = susp * w * (0.85 + 0.15 * rel)

    rc = causal.root_cause(c, susp, incident) if incident else None
    first = np.where(np.isfinite(c.first_ts), c.first_ts, np.inf)
    order = [int(k) for k in np.lexsort((first, -np.round(score, 2)))]
    if rc is not None:
        order.remove(rc)
        order.insert(0, rc)
    top = order[: max(top_k, 1)]

    cols = {k: table[k] for k in ("source", "line_no", "message", "service", "level", "component", "timestamp")}
    rows = [int(c.first_row[k]) for k in top]
    pick = {k: pc.take(v, pa.array(rows, pa.int64())).to_pylist() for k, v in cols.items()}
    expected = pc.take(scores["expected"], pa.array(rows, pa.int64())).to_pylist()
    evidence = []
    for i, k in enumerate(top):
        exp_ids = expected[i] or []
        evidence.append({
            "id": f"E{i + 1}", "rank": i + 1, "source": pick["source"][i], "line_no": pick["line_no"][i],
            "text": pick["message"][i], "service": pick["service"][i], "level": pick["level"][i],
            "timestamp": pick["timestamp"][i], "score": round(float(score[k]), 4),
            "signals": {
                "lstm": round(float(c.anomaly_max[k] * c.anomalous_frac[k]), 4),
                "novelty": round(float(1.0 if c.novel[k] and not near[k] else (0.25 if c.novel[k] else 0.0)), 4),
                "severity": round(float(c.severity[k]), 4),
                "onset": round(float(w[k]), 4),
                "tfidf": round(float(tfidf[k]), 4),
                **({"semantic": round(float(sem[k]), 4)} if semantic is not None else {}),
            },
            "expected": [bundle.vocab.templates.get(t, t) for t in exp_ids][:3],
            "count": int(c.count[k]), "template_id": c.template_id[k], "template": c.template[k],
            "component": pick["component"][i], "first_seen": iso(c.first_ts[k]), "last_seen": iso(c.last_ts[k]),
            "row": rows[i],
        })

    confidence = _confidence(c, susp, rel, incident, rc, since)
    if rc is None or confidence < NO_EVIDENCE:
        root = _no_evidence(issue, "no incident in these logs matches it" if incident else
                            "nothing in these logs departs from normal operation")
        root["confidence"] = round(confidence, 3)
        root["evidence_id"] = None
    else:
        ev = evidence[0]
        component, category = classify(ev["service"], ev["component"], ev["text"])
        root = {
            "component": component, "category": category, "confidence": round(confidence, 3),
            "summary": f"{component} ({category or 'uncategorised'}): {_short(ev['text'])}",
            "evidence_id": ev["id"], "service": ev["service"], "first_seen": ev["first_seen"],
        }
    members = np.flatnonzero((susp >= causal.SUSPICIOUS) & (c.first_ts >= onset - causal.PRE_ONSET_S)) \
        if incident else np.zeros(0, np.int64)
    affected = _affected(table, c, members)
    timeline = _timeline(evidence, rc is not None and confidence >= NO_EVIDENCE)
    stats = {"records": table.num_rows, "clusters": len(c), "incidents": len(found),
             "suspicious_clusters": int((susp >= causal.SUSPICIOUS).sum())}
    _add_context(table, evidence)
    series = anomaly_series(table, scores, epoch)
    return Diagnosis(evidence, root, timeline, affected, iso(onset) if np.isfinite(onset) else None, stats, series)


CONTEXT = 3


def _add_context(table: pa.Table, evidence: list[dict[str, Any]]) -> None:
    """The records around each finding in its own file (what an operator scrolls to): up to 3 before and after."""
    n = table.num_rows
    for ev in evidence:
        r = ev["row"]
        lo, hi = max(0, r - CONTEXT), min(n, r + CONTEXT + 1)
        part = table.slice(lo, hi - lo)
        rows = part.select(["source", "line_no", "level", "message"]).to_pylist()
        ev["context"] = [{"line_no": x["line_no"], "level": x["level"], "text": x["message"], "self": lo + i == r}
                         for i, x in enumerate(rows) if x["source"] == ev["source"]]


def anomaly_series(table: pa.Table, scores: pa.Table, epoch: np.ndarray, buckets: int = 60) -> dict[str, Any]:
    """Per service, the highest anomaly score in each of ``buckets`` equal time slices: the plot of where and when
    the logs departed from normal."""
    ok = np.isfinite(epoch)
    if not ok.any():
        return {}
    t0, t1 = float(epoch[ok].min()), float(epoch[ok].max())
    width = max((t1 - t0) / buckets, 1.0)
    b = np.clip(((epoch - t0) / width).astype(np.int64, copy=False), 0, buckets - 1)
    svc = pc.dictionary_encode(pc.fill_null(table["service"].combine_chunks(), "unknown"))
    codes = svc.indices.to_numpy(zero_copy_only=False)
    names = svc.dictionary.to_pylist()
    an = scores["anomaly"].to_numpy()
    grid = np.zeros((len(names), buckets))
    np.maximum.at(grid, (codes[ok], b[ok]), an[ok])
    return {"start": iso(t0), "bucket_s": round(width, 3),
            "times": [iso(t0 + width * (i + 0.5)) for i in range(buckets)],
            "services": {names[k]: [round(float(v), 3) for v in grid[k]] for k in range(len(names))}}


def _confidence(c: Clusters, susp: np.ndarray, rel: np.ndarray, incident, rc: int | None,
                since: float | None) -> float:
    """How sure the report is that it found what the issue describes: the incident must be clearly abnormal
    (suspicion) and about what the operator asked (relevance of its clusters), near the time they named."""
    if incident is None or rc is None:
        return float(min(0.2, 0.2 * susp.max(initial=0.0)))
    dt = c.first_ts - incident.onset
    inside = np.flatnonzero((susp >= causal.SUSPICIOUS) & (dt >= -causal.PRE_ONSET_S) & (dt <= 3600))
    r = float(rel[inside].max(initial=0.0))
    r = float(np.clip((r - 0.1) / 0.5, 0.0, 1.0))
    when = 1.0
    if since is not None and (incident.end < since - 900 or incident.onset > since + 6 * 3600):
        when = 0.5
    return float(susp[rc] * (0.15 + 0.85 * r) * when)


def _short(text: str, n: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _no_evidence(issue: Issue, why: str) -> dict[str, Any]:
    return {"component": None, "category": None, "confidence": 0.0,
            "summary": f"No evidence found: {why}."}


def _empty_affected() -> dict[str, list[str]]:
    return {"instances": [], "requests": [], "services": []}


def _affected(table: pa.Table, c: Clusters, members: np.ndarray) -> dict[str, list[str]]:
    if len(members) == 0:
        return _empty_affected()
    mask = np.isin(c.code, members)
    idx = pa.array(np.flatnonzero(mask))
    out = {}
    for key, col in (("instances", "instance_id"), ("requests", "request_id"), ("services", "service")):
        vals = pc.unique(pc.drop_null(pc.take(table[col], idx))).to_pylist()
        out[key] = sorted(v for v in vals if v)
    return out


def _timeline(evidence: list[dict[str, Any]], has_root: bool) -> list[dict[str, Any]]:
    """The evidence in time order: when each finding began (and last recurred), root cause marked."""
    events = []
    for ev in evidence:
        kind = "root_cause" if has_root and ev["rank"] == 1 else "symptom"
        events.append({"time": ev["first_seen"], "last_seen": ev["last_seen"], "evidence_id": ev["id"],
                       "service": ev["service"], "level": ev["level"], "count": ev["count"], "kind": kind,
                       "event": _short(ev["text"], 120)})
    events.sort(key=lambda e: (e["time"] is None, e["time"] or ""))
    return events
