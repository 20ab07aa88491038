"""The report's parts, from the engine's decisions: evidence items, the request chain, timeline, affected
resources, and the per-service rate of unexpected events.

Every item leads with what an SRE reads (the log text, its host and service, when); the per-signal scores ride
along in ``signals`` for a detail view.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..parse.timestamps import iso
from . import causal
from .chains import operation
from .code import locate
from .relevance import host_of

CONTEXT = 3
MAX_CHAIN = 10


def short(text: str | None, n: int = 160) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


_INSTANCE_PREFIX = re.compile(r"^\[instance: [^\]]*\]\s*")


def cause_line(message: str | None, exception: str | None) -> str:
    """The line that states the specific cause: the exception with its message when the record carries one that
    says something ("TypeError: consume_from_volume() takes exactly 2 arguments"), else the message itself."""
    exc = (exception or "").strip()
    has_text = ":" in exc and exc.split(":", 1)[1].strip()
    text = exc if has_text else _INSTANCE_PREFIX.sub("", str(message or "").strip())
    return short(text, 240)


def empty_affected() -> dict[str, list[str]]:
    return {"instances": [], "requests": [], "services": []}


def evidence(table: pa.Table, scores: pa.Table, bundle, c, order: list[int], roles: dict[int, str],
             shown_rows: dict[int, int], *, susp: np.ndarray, rv, fam, semantic: bool,
             onset: float, baseline: np.ndarray, untrusted: np.ndarray | None = None) -> list[dict[str, Any]]:
    """``untrusted``: per cluster, its text reads like instructions to an AI; such items carry
    ``"untrusted": true`` (and only they carry the key, so other reports stay as they were)."""
    rows = [int(shown_rows.get(k, c.first_row[k])) for k in order]
    cols = ("source", "line_no", "message", "service", "level", "component", "timestamp", "exception", "raw",
            "request_id")
    idx = pa.array(rows, pa.int64())
    pick = {k: pc.take(table[k], idx).to_pylist() for k in cols}
    expected = pc.take(scores["expected"], idx).to_pylist()
    model_w = fam.weight
    out = []
    for i, k in enumerate(order):
        loc = locate(pick["raw"][i] or "", pick["message"][i] or "", pick["component"][i], pick["exception"][i])
        onset_w = 1.0 if not np.isfinite(onset) else float(causal.onset_weight(c.first_t[k:k + 1], onset)[0])
        out.append({
            "id": f"E{i + 1}", "rank": i + 1, "role": roles.get(k, "related"),
            "text": pick["message"][i], "service": pick["service"][i],
            "host": host_of(pick["source"][i], pick["service"][i]), "level": pick["level"][i],
            "timestamp": pick["timestamp"][i], "source": pick["source"][i], "line_no": pick["line_no"][i],
            "exception": pick["exception"][i], "code": loc.as_dict() if loc else None,
            "request_id": pick["request_id"][i], "score": round(float(susp[k] * (0.3 + 0.7 * rv.rel[k])), 4),
            "signals": {
                "severity": round(float(c.severity[k]), 4),
                "lexical": round(float(rv.lexical[k]), 4),
                **({"semantic": round(float(rv.semantic[k]), 4)} if semantic else {}),
                "relevance": round(float(rv.rel[k]), 4),
                "lstm": round(float(c.anomaly_max[k] * c.anomalous_frac[k]), 4),
                "novelty": round(float(c.novel[k]), 4),
                "model_weight": round(model_w, 4),
                "onset": round(onset_w, 4),
                # rate in the incident / rate before it in these logs (99: only since the incident)
                "baseline": round(float(min(baseline[k], 99.0)), 2),
            },
            "expected": [bundle.vocab.templates.get(t, t) for t in (expected[i] or [])][:3],
            "count": int(c.count[k]), "template_id": c.template_id[k], "template": c.template[k],
            "component": pick["component"][i], "first_seen": iso(c.first_ts[k]), "last_seen": iso(c.last_ts[k]),
            "row": rows[i],
        })
        if untrusted is not None and untrusted[k]:
            out[-1]["untrusted"] = True
    return out


def chain(table: pa.Table, c, inc, links, order: np.ndarray, sev_rec: np.ndarray,
          evidence: list[dict[str, Any]], untrusted: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The path from the root cause to what the operator saw: warnings and errors on the chain, and the API
    answers that failed, one step per template, in time order."""
    rows = np.union1d(inc.chain_rows, links.request_rows(inc.root_row))
    rows = np.union1d(rows, [inc.root_row])
    t0 = order[inc.root_row]
    msgs = pc.take(table["message"], pa.array(rows)).to_pylist()
    api_fail = np.array([_failed_call(m) for m in msgs], dtype=bool)
    keep = ((sev_rec[rows] >= causal.STRONG) & ~c.housekeeping[c.code[rows]]) | api_fail
    keep &= order[rows] >= t0 - causal.PRE_S
    rows, api_fail = rows[keep], api_fail[keep]
    srt = np.lexsort((rows, order[rows]))
    rows, api_fail = rows[srt], api_fail[srt]
    by_row = {ev["row"]: ev["id"] for ev in evidence}  # a step cites a finding only when it is the same line
    steps, seen = [], set()
    pick = {k: pc.take(table[k], pa.array(rows)).to_pylist()
            for k in ("timestamp", "service", "level", "message", "template_id", "request_id", "exception")}
    for i, r in enumerate(rows):
        tpl = pick["template_id"][i]
        if tpl in seen:
            continue
        seen.add(tpl)
        steps.append({
            "time": pick["timestamp"][i], "service": pick["service"][i], "level": pick["level"][i],
            "text": short(pick["exception"][i] or pick["message"][i], 200), "request_id": pick["request_id"][i],
            "evidence_id": by_row.get(int(r)), "root_cause": int(r) == inc.root_row,
            "api": operation(pick["message"][i]) if api_fail[i] else None,
        })
        if untrusted is not None and untrusted[int(r)]:
            steps[-1]["untrusted"] = True
    if len(steps) > MAX_CHAIN:
        root_i = next((i for i, s in enumerate(steps) if s["root_cause"]), 0)
        keep_i = sorted(set(range(max(0, root_i - 2), root_i + MAX_CHAIN - 3)) | {len(steps) - 1})
        steps = [steps[i] for i in keep_i if i < len(steps)][:MAX_CHAIN]
    return steps


def _failed_call(message: str | None) -> bool:
    op = operation(message) if message else None
    return bool(op) and op.rsplit(" ", 1)[-1][:1] in ("4", "5") and op.rsplit(" ", 1)[-1].isdigit()


def affected(table: pa.Table, c, inc, links) -> dict[str, list[str]]:
    """What the incident's warnings and errors name (instances, requests, services), with the root cause's and
    the anchor's own requests. Not the whole chain: its second hop reaches periodic tasks that touch every
    instance on the host."""
    strong_rows = np.flatnonzero(np.isin(c.code, inc.members) & (c.record_severity >= causal.STRONG))
    own = np.union1d(links.request_rows(inc.root_row), links.request_rows(int(c.first_row[inc.anchor])))
    rows = np.union1d(strong_rows, own)
    out = {}
    for key, col, src in (("instances", "instance_id", rows), ("requests", "request_id", rows),
                          ("services", "service", rows[c.record_severity[rows] >= causal.STRONG])):
        vals = pc.unique(pc.drop_null(pc.take(table[col], pa.array(src, pa.int64())))).to_pylist() if len(src) else []
        out[key] = sorted(v for v in vals if v)
    return out


def timeline(evidence: list[dict[str, Any]], has_root: bool) -> list[dict[str, Any]]:
    """The evidence in time order: when each finding began (and last recurred), root cause marked."""
    events = []
    for ev in evidence:
        kind = "root_cause" if has_root and ev["rank"] == 1 else "symptom"
        events.append({"time": ev["first_seen"], "last_seen": ev["last_seen"], "evidence_id": ev["id"],
                       "service": ev["service"], "level": ev["level"], "count": ev["count"], "kind": kind,
                       "event": short(ev["text"], 120)})
    events.sort(key=lambda e: (e["time"] is None, e["time"] or ""))
    return events


def add_context(table: pa.Table, evidence: list[dict[str, Any]]) -> None:
    """The records around each finding in its own file (what an operator scrolls to): up to 3 before and after."""
    n = table.num_rows
    for ev in evidence:
        r = ev["row"]
        lo, hi = max(0, r - CONTEXT), min(n, r + CONTEXT + 1)
        part = table.slice(lo, hi - lo)
        recs = part.select(["source", "line_no", "level", "message"]).to_pylist()
        ev["context"] = [{"line_no": x["line_no"], "level": x["level"], "text": x["message"], "self": lo + i == r}
                         for i, x in enumerate(recs) if x["source"] == ev["source"]]


def series(table: pa.Table, clk, sev_rec: np.ndarray, c, buckets: int = 60) -> dict[str, Any]:
    """Per service, unexpected events per minute in each of ``buckets`` equal time slices: warnings and errors
    that are not housekeeping. A rate, not a maximum, so an incident stands out against steady chatter."""
    if clk.line_order_only or not clk.timed.any():
        return {}
    t = clk.order
    t0, t1 = float(t.min()), float(t.max())
    width = max((t1 - t0) / buckets, 1.0)
    b = np.clip(((t - t0) / width).astype(np.int64), 0, buckets - 1)
    unexpected = (sev_rec >= causal.STRONG) & ~c.housekeeping[c.code]
    svc = pc.dictionary_encode(pc.fill_null(table["service"].combine_chunks(), "unknown"))
    codes = svc.indices.to_numpy(zero_copy_only=False)
    names = svc.dictionary.to_pylist()
    grid = np.zeros((len(names), buckets))
    np.add.at(grid, (codes[unexpected], b[unexpected]), 1.0)
    grid *= 60.0 / width
    return {"start": iso(t0), "bucket_s": round(width, 3), "unit": "unexpected events per minute",
            "times": [iso(t0 + width * (i + 0.5)) for i in range(buckets)],
            "services": {names[k]: [round(float(v), 3) for v in grid[k]] for k in range(len(names))}}
