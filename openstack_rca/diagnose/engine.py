"""diagnose: parsed records + scores + the issue -> ranked evidence, root cause, chain, timeline, confidence.

Pure computation on what earlier layers produced (the parsed table, the model's scores, optional semantic
similarities); no I/O, so the CLI, the service and the dashboard get the same answer from the same inputs.
The order of work: one clock for all files, template clusters judged by what they say and by the model (as far
as it knows these logs), relevance to the issue, the incident and its root cause (``causal``), then the report
(``findings``). Log text is untrusted: a cluster with a line that reads like instructions to an AI (``untrusted``)
is shown as evidence marked ``"untrusted": true`` with a warning, and never anchors the incident or becomes its
root cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..parse.timestamps import iso, to_epoch
from ..score.bundle import ModelBundle
from . import causal, clock, findings, untrusted
from .categories import classify
from .chains import Links
from .clusters import build_clusters
from .code import locate
from .issue import Issue
from .relevance import (NAMED, Relevance, SemanticFn, cluster_bags, host_codes, host_fit, incident_relevance, relevance,
                        symptom_fit, time_fit)

# an issue about housekeeping itself ("deprecation warnings flood the logs") may be answered with it
HOUSEKEEPING_WORDS = re.compile(r"deprecat|config|option|warning|cache|periodic|privsep|base file|obsolete", re.I)
NO_EVIDENCE = 0.3  # below this confidence the report says the logs do not support the issue
MIN_RELEVANCE = 0.2  # a strong record must relate to the issue at least this much to be evidence of it
RELEVANCE_SPAN = 0.5  # relevance above MIN_RELEVANCE that counts fully


@dataclass
class Diagnosis:
    evidence: list[dict[str, Any]]
    root_cause: dict[str, Any]
    timeline: list[dict[str, Any]]
    affected: dict[str, list[str]]
    onset: str | None
    stats: dict[str, Any] = field(default_factory=dict)
    series: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def diagnose(table: pa.Table, scores: pa.Table, bundle: ModelBundle, issue: Issue, *,
             semantic: Mapping[str, float] | SemanticFn | None = None, top_k: int = 10) -> Diagnosis:
    """``semantic``: the issue's cosine per template id, or a function that gives it for the ids asked; it is asked
    only for clusters whose value can change the report, with the same answer as when given every value."""
    if table.num_rows == 0:
        return Diagnosis([], _no_evidence("the logs hold no records"), [], findings.empty_affected(), None)
    epoch = to_epoch(table["timestamp"])
    clk = clock.build(table, epoch)
    tid = pc.dictionary_encode(table["template_id"].combine_chunks())
    encoded = bundle.vocab.encode(tid.dictionary.to_pylist())[tid.indices.to_numpy(zero_copy_only=False)]
    c = build_clusters(table, scores, clk.order, epoch, train_counts=bundle.counts, encoded=encoded,
                       train_total=int(bundle.counts.sum()))
    sev_rec = c.record_severity
    fam = causal.familiarity(c, scores["anomalous"].to_numpy(zero_copy_only=False))
    links = Links(table)
    rows = causal.Rows(table)

    maybe = (c.severity >= 0.4) | c.traceback
    rv = relevance(issue, c, cluster_bags(table, c, links, maybe & ~c.housekeeping), semantic)
    about_housekeeping = bool(HOUSEKEEPING_WORDS.search(issue.text))
    # relevance decides what is named and strong, the anchor (fit of strong clusters) and the confidence (strong
    # clusters): all within these; the rest matters only for ranking (``_rank``) and what the report shows
    rv.need(np.flatnonzero(((c.severity >= causal.STRONG) & ~c.housekeeping) | (c.housekeeping & about_housekeeping)))
    named = c.housekeeping & (rv.rel >= NAMED) & about_housekeeping
    susp = causal.suspicion(c, fam.weight, named)
    strong = (c.severity >= causal.STRONG) & (~c.housekeeping | named)
    # text that addresses the reader (instructions to an AI) is shown as data, never taken as the cause or anchor
    planted = untrusted.flags(table)
    planted_c = np.zeros(len(c), bool)
    planted_c[c.code[planted]] = True
    cause_ok = strong & ~planted_c
    finite = epoch[np.isfinite(epoch)]
    since = issue.since(float(finite.max()) if len(finite) else None)
    when = time_fit(c, since)
    host = host_fit(issue, c, table)
    sym = symptom_fit(issue, table, c, links, clk.order, strong)
    fit = np.maximum(rv.rel, 0.9 * sym) * when * host

    noid = ~pc.or_(pc.or_(pc.is_valid(table["request_id"]), pc.is_valid(table["global_request_id"])),
                   pc.is_valid(table["instance_id"])).to_numpy(zero_copy_only=False)
    inc = causal.find_incident(c, susp, fit, links, rows, order=clk.order, sev_rec=sev_rec, strong=cause_ok,
                               noid=noid, host=host_codes(table),
                               untrusted=planted_c[c.code] if planted.any() else None) if cause_ok.any() else None

    warnings = _warnings(fam, clk, issue)
    ratio = causal.baseline_ratio(c, clk.order, inc.onset, inc.end) if inc else np.full(len(c), np.inf)
    ranked, roles = _rank(c, susp, rv, inc, strong, ratio, top_k)
    rv.need(ranked)  # shown: a precursor or a quiet cluster ranked anyway shows its similarity
    shown_rows = {inc.root: inc.root_row} if inc else {}
    evidence = findings.evidence(table, scores, bundle, c, ranked, roles, shown_rows, susp=susp, rv=rv, fam=fam,
                                 semantic=semantic is not None, onset=inc.onset if inc else np.nan,
                                 baseline=ratio, untrusted=planted_c)
    rel_inc = max(incident_relevance(rv, table, c, inc.root, inc.root_row, inc.chain_rows, clk.order),
                  0.9 * float(sym[inc.anchor])) if inc else 0.0
    confidence, why = _confidence(c, rv.rel, rel_inc, when, host, fam, inc, cause_ok)
    if strong.any() and not cause_ok.any():
        why = "the only WARNING or worse records read like instructions to an AI, not log messages"
    stats = {"records": table.num_rows, "clusters": len(c),
             "incidents": len(causal.time_groups(c, strong, clk.order, sev_rec)),
             "suspicious_clusters": int(strong.sum()), "model_known_records": round(fam.known, 3),
             "model_unexpected_records": round(fam.unexpected, 3)}
    series = findings.series(table, clk, sev_rec, c)
    warnings.extend(untrusted.WARNING.format(id=ev["id"]) for ev in evidence if ev.get("untrusted"))
    if inc is None or confidence < NO_EVIDENCE:
        root = _no_evidence(why)
        root["confidence"] = round(confidence, 3)
        root["evidence_id"] = None
        onset = None
        affected = findings.empty_affected()
        timeline = findings.timeline(evidence, False)
    else:
        root = _root(table, rows, evidence[0], inc, confidence, issue, c, links, clk.order, sev_rec, evidence,
                     planted)
        onset = iso(epoch[int(c.first_row[inc.members[0]])]) if len(inc.members) else None
        affected = findings.affected(table, c, inc, links)
        timeline = findings.timeline(evidence, True)
        if issue.hosts and not root.get("host_matches", True):
            warnings.append(f"the issue names {', '.join(issue.hosts)}, but the root cause was logged "
                            f"{'on ' + root['host'] if root.get('host') else 'by a file that names no host'}")
    root["warnings"] = [w for w in warnings if "never seen in training" in w]  # the card shows it
    findings.add_context(table, evidence)
    return Diagnosis(evidence, root, timeline, affected, onset, stats, series, warnings)


def _rank(c, susp: np.ndarray, rv: Relevance, inc, strong: np.ndarray, ratio: np.ndarray,
          top_k: int) -> tuple[list[int], dict]:
    """Evidence order: the root cause, its precursors, the rest of its first second, then the rest by score."""
    roles: dict[int, str] = {}
    head: list[int] = []
    if inc is not None:
        for k, role in ([(inc.root, "root_cause")] + [(k, "precursor") for k in inc.precursors]
                        + [(k, "same_failure") for k in inc.burst]):
            if k not in roles:
                roles[k] = role
                head.append(k)
        on_chain = np.zeros(len(c), bool)
        on_chain[c.code[inc.chain_rows]] = True
        # off the chain, what is near the incident counts, unless it was there before at the same rate
        steady = np.clip(np.log(np.maximum(ratio, 1.0)) / np.log(3.0), 0.3, 1.0)
        prox = np.where(on_chain, 1.0, causal.onset_weight(c.first_t, inc.onset, inc.end) * steady)
    else:
        prox = np.ones(len(c))

    def score_of(rel: np.ndarray) -> np.ndarray:
        return susp * (0.3 + 0.7 * rel) * prox * np.where(c.housekeeping, 0.2, 1.0)

    in_head = np.zeros(len(c), bool)
    in_head[head] = True
    rv.need(_contenders(score_of, rv, in_head, max(top_k, 1)))
    score = score_of(rv.rel)
    rest = [int(k) for k in np.lexsort((c.first_t, -np.round(score, 3))) if int(k) not in roles]
    for k in rest[: max(top_k, 1)]:
        roles[k] = "symptom" if strong[k] else "related"
    return (head + rest)[: max(top_k, 1)], roles


def _contenders(score_of, rv: Relevance, in_head: np.ndarray, n: int) -> np.ndarray:
    """Clusters not looked up yet that may still make the top ``n`` after the head: those whose best possible
    score (cosine 1) is not beaten by the lowest possible scores of at least ``n`` others. The score rises with
    relevance, so whatever is left out ranks below ``n`` others both with its similarity and without it."""
    if rv.complete:
        return np.zeros(0, np.int64)
    lo = np.round(score_of(rv.rel), 3)
    hi = np.round(score_of(rv.upper()), 3)
    pool = np.sort(lo[~in_head])
    ahead = len(pool) - np.searchsorted(pool, hi, side="right")  # others whose lowest score beats this one's best
    return np.flatnonzero(~in_head & ~rv.known & (ahead < n))


def _confidence(c, rel: np.ndarray, rel_inc: float, when: np.ndarray, host: np.ndarray, fam, inc,
                strong: np.ndarray) -> tuple[float, str]:
    """How sure the report is that it found what the issue describes: a failure clearly logged (an error, a
    traceback), on the operation and objects the operator named, near their time and host."""
    if not strong.any():
        return 0.0, "no WARNING or worse record in these logs (housekeeping aside)"
    best_rel = float(rel[strong].max())
    if inc is None or best_rel < MIN_RELEVANCE:
        return (round(0.2 * min(best_rel / MIN_RELEVANCE, 1.0) * 0.5, 3),
                "no WARNING or worse record relates to it")
    r = max(float(rel[inc.anchor]), float(rel[inc.root]), rel_inc)
    relf = float(np.clip((r - MIN_RELEVANCE) / RELEVANCE_SPAN, 0.0, 1.0))
    st = float(causal.strength(c)[inc.root])
    w = fam.weight
    m = float(causal.model_signal(c)[inc.root])
    ordinary = w * (1.0 - m) * (not c.novel[inc.root])  # a familiar model finds the root cause routine
    background = 0.6 if causal.chronic(c)[inc.root] else 1.0
    conf = st * (0.1 + 0.9 * relf) * float(when[inc.anchor]) * float(host[inc.anchor]) * background
    conf *= 1.0 - 0.4 * ordinary
    return float(np.clip(conf, 0.0, 1.0)), "no incident in these logs matches it"


def _warnings(fam, clk, issue: Issue) -> list[str]:
    out = []
    if fam.unfamiliar:
        out.append(f"{(1.0 - fam.known) * 100:.0f}% of these records have templates never seen in training and the "
                   f"model finds {fam.unexpected * 100:.0f}% of them unexpected: it comes from another deployment, "
                   "so its verdicts count for little here; `rca train` on this cloud's normal logs")
    if clk.note:
        out.append(clk.note)
    return out


def _root(table, rows, ev: dict[str, Any], inc, confidence: float, issue: Issue, c, links, order, sev_rec,
          evidence, planted: np.ndarray) -> dict[str, Any]:
    r = inc.root_row
    exception = rows.get("exception", r)
    loc = locate(rows.get("raw", r) or "", rows.get("message", r) or "", rows.get("component", r), exception)
    component, category = classify(ev["service"], ev["component"], f"{ev['text']} {exception or ''}")
    quote = findings.cause_line(ev["text"], exception)
    host = ev.get("host")
    hay = f"{ev['source']} {ev['text']}".lower()
    return {
        "component": component, "category": category, "confidence": round(confidence, 3),
        "summary": f"{component} ({category or 'uncategorised'}): {quote}",
        "quote": quote, "evidence_id": ev["id"], "service": ev["service"], "host": host,
        "host_matches": (not issue.hosts) or any(h in hay for h in issue.hosts),
        "first_seen": ev["first_seen"], "code": loc.as_dict() if loc else None,
        "chain": findings.chain(table, c, inc, links, order, sev_rec, evidence, untrusted=planted),
    }


def _no_evidence(why: str) -> dict[str, Any]:
    return {"component": None, "category": None, "confidence": 0.0, "summary": f"No evidence found: {why}."}
