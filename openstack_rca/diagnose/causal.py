"""From judged clusters to the incident the issue is about, its root cause and how sure the report is.

* suspicion: how far a cluster departs from routine, from what the logs say by themselves (severity, tracebacks,
  housekeeping, a template that recurs all through the logs is background) plus what the model adds, weighted by
  how well the model knows these logs. The model never gates: an error is evidence even when no model knows it.
* the anchor: the strong cluster (WARNING or worse, not housekeeping) that best fits the issue: suspicious,
  relevant to its words and operation, near its time and host.
* the incident: the strong clusters around the anchor in time (a quiet gap ends it).
* the root cause: the earliest error on the anchor's chain (shared request, instance or resource), or a
  service-level error with no ids at all just before it; warnings and INFO lines of trouble before it on the
  chain are its precursors. Within the first second of the root's request on its service, the record with the
  fullest traceback leads: it is the same failure, located.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .chains import Links
from .clusters import Clusters
from .code import frames, is_service_module

STRONG = 0.6  # severity of a cluster that can anchor an incident: WARNING or worse, or any traceback
ERROR = 0.9
GAP_S = 300.0  # a quiet gap this long between strong clusters ends an incident
PRE_S = 120.0  # how far before the root cause a precursor on its chain may start
HOST_S = 3600.0  # how far back an agent's error on the same host may explain a failure there
BURST_S = 2.0  # records of the root's request on its service this close to it are the same failure
UNFAMILIAR = 0.5  # above this share of templates unknown to the model, the model is from somewhere else
EXPECTED_FLAGS = 0.2  # share of records DeepLog flags on logs like its training data (held-out normal runs)


@dataclass(frozen=True)
class Familiarity:
    """How well the model knows these logs: the share of their records whose template it saw in training, and the
    share of their records it finds unexpected (on its own deployment a few percent; on another one, most)."""

    known: float
    unexpected: float

    @property
    def weight(self) -> float:
        """1.0: the model knows these logs and its verdicts count; 0.0: it does not, and they count for nothing."""
        flow = float(np.clip(1.0 - (self.unexpected - EXPECTED_FLAGS) / 0.3, 0.0, 1.0))
        return float(np.clip((self.known * flow - 0.3) / 0.5, 0.0, 1.0))

    @property
    def unfamiliar(self) -> bool:
        return 1.0 - self.known >= UNFAMILIAR or self.unexpected >= EXPECTED_FLAGS + 0.15


def familiarity(c: Clusters, anomalous: np.ndarray) -> Familiarity:
    # by records, not by templates: a long tail of one-off templates (unmasked ids in dict dumps) is not what
    # decides whether the model knows a deployment's traffic
    known = float(c.count[~c.novel].sum() / max(c.count.sum(), 1)) if len(c) else 1.0
    return Familiarity(known, float(anomalous.mean()) if len(anomalous) else 0.0)


def chronic(c: Clusters) -> np.ndarray:
    """Background: a template that appears in the first tenth of the logs and recurs in most of what follows."""
    if not len(c):
        return np.zeros(0, bool)
    lo, hi = float(c.first_t.min()), float(np.nanmax(c.first_t))
    early = c.first_t <= lo + 0.1 * max(hi - lo, 1e-9)
    return early & (c.spread >= 0.5) & (c.count >= 3)


def onset_weight(first_t: np.ndarray, onset: float, end: float | None = None) -> np.ndarray:
    """1 inside the incident (and shortly before it); decays for what came long before or after."""
    end = onset if end is None else end
    before = np.exp(-np.maximum(onset - PRE_S - first_t, 0.0) / 300.0)
    after = 0.55 + 0.45 * np.exp(-np.maximum(first_t - end, 0.0) / 300.0)
    return np.where(first_t < onset, before, np.where(first_t > end, after, 1.0))


def baseline_ratio(c: Clusters, order: np.ndarray, onset: float, end: float) -> np.ndarray:
    """The self-baseline, no training needed: each template's rate inside the incident over its rate in the logs
    before it. inf for a template that appears only from the incident on; about 1 for steady chatter that was
    there all along; above 1 for a rate that jumps."""
    lo, hi = float(order.min()), float(order.max())
    w_end = max(end + PRE_S, onset + 60.0)
    inside = (order >= onset - PRE_S) & (order <= w_end)
    before = order < onset - PRE_S
    n_in = np.bincount(c.code[inside], minlength=len(c)).astype(float)
    n_before = np.bincount(c.code[before], minlength=len(c)).astype(float)
    span_in = max(min(w_end, hi) - max(onset - PRE_S, lo), 1.0)
    span_before = max(onset - PRE_S - lo, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (n_in / span_in) / (n_before / span_before)
    return np.where(n_before == 0, np.inf, np.nan_to_num(ratio, nan=0.0))


def model_signal(c: Clusters) -> np.ndarray:
    """0..1: the model finds the template new, unexpected in its context, or far more frequent than trained."""
    burst = np.clip(np.log(np.maximum(c.burst, 1.0)) / np.log(100.0), 0.0, 1.0)
    return np.maximum(np.where(c.novel, 1.0, burst), c.anomalous_frac * c.anomaly_max)


def suspicion(c: Clusters, w: float, named: np.ndarray) -> np.ndarray:
    """How far each cluster departs from routine (0..1). ``named``: the issue speaks of it, housekeeping or not."""
    sev = np.where(c.housekeeping & ~named, c.severity * 0.15, c.severity)
    background = np.where(chronic(c), 0.6, 1.0)
    m = model_signal(c)  # counts as far as the model knows these logs (w)
    familiar_normal = w * (~c.novel) * (1.0 - m)  # the model knows it and finds it ordinary
    s = sev * background * (1.0 - 0.35 * familiar_normal) + 0.2 * w * m * (1.0 - sev)
    return np.clip(s, 0.0, 1.0)


def strength(c: Clusters) -> np.ndarray:
    """How much a cluster, as the named root cause, proves a failure: an error or traceback fully; a warning
    that says what went wrong less; a bare warning or an INFO line of trouble little."""
    warn_words = np.where(c.trouble, 0.75, 0.5)
    return np.where(c.severity >= ERROR, 1.0, np.where(c.severity >= STRONG, warn_words,
                                                       np.where(c.trouble, 0.4, 0.2)))


@dataclass
class Incident:
    anchor: int  # cluster that best fits the issue
    members: np.ndarray  # strong clusters in its time group
    onset: float  # engine clock of its first member
    end: float
    root: int  # the cluster named as root cause
    root_row: int  # the record shown for it (the fullest traceback of the first failure)
    first_error: int  # the earliest error on the chain (the root, unless a fuller traceback leads)
    precursors: list[int] = field(default_factory=list)  # chain warnings/trouble before the root, in time order
    burst: list[int] = field(default_factory=list)  # other clusters of the root's first second
    chain_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))


class Rows:
    """Cell access for the few records the engine looks at one by one."""

    def __init__(self, table):
        self.table = table
        self._cache: dict[tuple[str, int], object] = {}

    def get(self, col: str, row: int):
        key = (col, row)
        if key not in self._cache:
            self._cache[key] = self.table.column(col)[int(row)].as_py()
        return self._cache[key]


def time_groups(c: Clusters, strong: np.ndarray, order: np.ndarray, sev_rec: np.ndarray) -> list[np.ndarray]:
    """Strong clusters grouped in time. What keeps a group open: a strong cluster appearing for the first time, or
    an error record of one that is not background, within GAP_S of the last; so an error that keeps recurring
    (an agent that fails every few seconds) holds its incident open until what it causes shows up, while
    recurring warnings do not join everything into one incident."""
    idx = np.flatnonzero(strong)
    if len(idx) == 0:
        return []
    live = strong[c.code] & (sev_rec >= ERROR) & ~chronic(c)[c.code]
    t = np.sort(np.concatenate([c.first_t[idx], order[live]]))
    starts = np.concatenate([[t[0]], t[1:][np.diff(t) > GAP_S]])
    g = np.searchsorted(starts, c.first_t[idx], side="right") - 1
    out = []
    for i in range(len(starts)):
        members = idx[g == i]
        if len(members):
            out.append(members[np.argsort(c.first_t[members], kind="stable")])
    return out


def service_frames(raw: str | None) -> int:
    return sum(1 for f in frames(raw or "") if is_service_module(f.module))


def find_incident(c: Clusters, susp: np.ndarray, fit: np.ndarray, links: Links, rows: Rows, *, order: np.ndarray,
                  sev_rec: np.ndarray, strong: np.ndarray, noid: np.ndarray,
                  host: np.ndarray | None = None, untrusted: np.ndarray | None = None) -> Incident | None:
    """``fit``: per cluster, how well it matches the issue (relevance x time x host), 0..1. ``noid``: per record,
    it carries no request or instance id: a service-level event (a broker alarm, an agent crash) that no id links
    to anything, which may still open an incident. ``host``: per record, a code for the host its file names (-1:
    none); an error of such an event on the anchor's host counts up to HOST_S before it. ``untrusted``: per
    record, its text reads like instructions to an AI: never the root, a precursor or the same failure (the
    caller leaves such clusters out of ``strong``, so none anchors)."""
    cand = np.flatnonzero(strong)
    if len(cand) == 0:
        return None
    score = susp[cand] * (0.2 + 0.8 * fit[cand])
    anchor = int(cand[np.lexsort((c.first_t[cand], -np.round(score, 3)))][0])
    groups = time_groups(c, strong, order, sev_rec)
    group = next(g for g in groups if anchor in g)
    g_start = float(c.first_t[group].min())
    ra = int(c.first_row[anchor])
    t_a = order[ra]
    chain_rows = links.chain(ra, rows.get("message", ra))

    # the records that may be the root: warnings and errors on the anchor's chain since the incident opened, and
    # service-level events (no ids) before the anchor: any error since the incident opened, warnings shortly before
    routine = c.housekeeping[c.code] | chronic(c)[c.code]
    on_chain = np.zeros(len(order), bool)
    on_chain[chain_rows] = True
    window = (order >= g_start) & (order <= t_a + BURST_S)
    same_host = (host == host[ra]) & (host[ra] >= 0) if host is not None else np.zeros(len(order), bool)
    lone = noid & ~routine & (order <= t_a) & (((sev_rec >= ERROR) & (order >= g_start))
                                              | ((sev_rec >= ERROR) & same_host & (order >= t_a - HOST_S))
                                              | ((sev_rec >= STRONG) & (order >= t_a - PRE_S)))
    trusted = ~untrusted if untrusted is not None else np.ones(len(order), bool)
    pool = np.flatnonzero(((on_chain & window & (sev_rec >= STRONG) & ~c.housekeeping[c.code]) | lone) & trusted)
    errors = pool[sev_rec[pool] >= ERROR]
    pick = errors if len(errors) else pool
    r0 = int(pick[np.lexsort((pick, order[pick]))][0]) if len(pick) else ra
    first_error = int(c.code[r0])
    t0 = order[r0]

    # the same failure, located: the fullest traceback of the first error's request on its service, right after it
    svc = rows.get("service", r0)
    near = links.request_rows(r0)
    near = near[(order[near] >= t0) & (order[near] <= t0 + BURST_S) & (sev_rec[near] >= ERROR)]
    near = [int(r) for r in near if rows.get("service", int(r)) == svc and trusted[r]]
    depth = {r: service_frames(rows.get("raw", r)) for r in near}
    root_row = r0
    if depth and max(depth.values()) > depth.get(r0, service_frames(rows.get("raw", r0))):
        root_row = max(depth, key=lambda r: (depth[r], -order[r]))
    root = int(c.code[root_row])
    pre = np.flatnonzero((on_chain | (noid & ~routine)) & (sev_rec >= 0.4) & ~c.housekeeping[c.code]
                         & (order < t0) & (order >= t0 - PRE_S) & trusted)
    # closest first: the root's own service and chain, then the most severe, then the latest
    close = np.array([on_chain[r] or rows.get("service", int(r)) == svc for r in pre], dtype=bool)
    if close.sum() >= 2:
        pre, close = pre[close], close[close]  # what happened on the root's own service and chain says enough
    rank = np.lexsort((-order[pre], -sev_rec[pre], ~close))
    precursors = list(dict.fromkeys(int(c.code[r]) for r in pre[rank]))[:3]
    precursors.sort(key=lambda k: c.first_t[k])
    burst = list(dict.fromkeys(int(c.code[r]) for r in sorted(near, key=lambda r: order[r])))
    burst = ([first_error] if root != first_error else []) + [k for k in burst if k not in (root, first_error)]
    precursors = [k for k in precursors if k not in (root, first_error)]
    return Incident(anchor, np.asarray(group), g_start, float(c.first_t[group].max()), root, root_row, first_error,
                    precursors, burst, chain_rows)
