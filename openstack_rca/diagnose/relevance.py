"""How well each cluster fits the issue: its words, its request's operation, its time and its host.

A cluster's words are its template, the exception it carries, its logger, the functions of its traceback
(``_build_and_run_instance`` says build and instance) and, for clusters that may be evidence, the operation of
the API request it served (``DELETE /v2.0/networks/…`` -> delete network, status 500). The semantic signal
(hybrid mode) may lift a cluster the words miss, but not past an operation the issue does not name. It may come as
a function, asked only for the clusters that can change the answer (``Relevance.need``): embedding every template
of a large log costs more than the rest of the analysis.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .chains import Links, operation
from .clusters import Clusters
from .code import frames
from .issue import STATUS, Issue
from .lexical import OTHER_ACTION, Matcher, bag, words

SEMANTIC_FLOOR, SEMANTIC_SPAN = 0.25, 0.3  # MiniLM cosine: unrelated sentences reach ~0.25; >= 0.55 the same symptom
SEMANTIC_WEIGHT = 0.75  # meaning alone never counts as much as the operator's own words found in the line
NAMED = 0.6  # relevance at which the issue is taken to name a cluster (housekeeping included)
EARLY_S = 900.0  # an incident may start this long before the time the operator named


SemanticFn = Callable[[Sequence[str]], Mapping[str, float]]  # template ids -> cosine to the issue


@dataclass(frozen=True)
class Relevance:
    rel: np.ndarray  # 0..1 combined
    lexical: np.ndarray
    semantic: np.ndarray  # raw cosine (0 when absent or not looked up yet)
    matcher: Matcher
    bags: list[frozenset[str]]
    ids: Sequence[str] = ()
    lookup: SemanticFn | None = None
    known: np.ndarray | None = None  # per cluster: its semantic value is in (always, unless ``lookup``)
    action: np.ndarray | None = None  # per cluster: it names the issue's action (when the issue names one)

    @property
    def complete(self) -> bool:
        return self.known is None or bool(self.known.all())

    def need(self, clusters) -> None:
        """Look up the clusters' similarity where it is not in yet; their ``rel`` and ``semantic`` become final.
        Until then a cluster's ``rel`` is its lexical relevance: what a cosine at or below the floor gives."""
        if self.known is None or self.lookup is None:
            return
        idx = np.asarray(clusters, dtype=np.int64).reshape(-1)
        idx = np.unique(idx[~self.known[idx]])
        if not len(idx):
            return
        got = self.lookup([self.ids[k] for k in idx])
        sem = np.array([float(got.get(self.ids[k], 0.0)) for k in idx])
        self.semantic[idx] = sem
        act = None if self.action is None else self.action[idx]
        self.rel[idx] = np.maximum(self.lexical[idx], _semantic_rel(sem, act))
        self.known[idx] = True

    def upper(self) -> np.ndarray:
        """The highest ``rel`` each cluster can reach: final where known, else as if its cosine were 1."""
        if self.complete:
            return self.rel
        act = self.action
        cap = np.maximum(self.lexical, _semantic_rel(np.ones(len(self.rel)), act))
        return np.where(self.known, self.rel, cap)


def _plain(template: str) -> str:
    return " ".join(template.replace("<*>", " ").split())


def cluster_bags(table: pa.Table, c: Clusters, links: Links, candidates: np.ndarray) -> list[frozenset[str]]:
    """Words per cluster: its own, plus its request's API operation for the candidates."""
    take = pa.array(c.first_row)
    exc = pc.take(table["exception"], take).to_pylist() if len(c) else []
    comp = pc.take(table["component"], take).to_pylist() if len(c) else []
    raw = pc.take(table["raw"], pa.array(np.where(c.traceback, c.first_row, 0))).to_pylist() if len(c) else []
    bags = []
    for k in range(len(c)):
        parts = [_plain(c.template[k]), exc[k] or "", comp[k] or ""]
        if c.traceback[k]:
            parts.append(" ".join(dict.fromkeys(f.function for f in frames(raw[k] or ""))))
        bags.append(bag(parts))
    messages = table["message"]
    for k in np.flatnonzero(candidates):
        req = links.origin_rows(int(c.first_row[k]))
        ops = {operation(m) for m in pc.take(messages, pa.array(req)).to_pylist() if m}
        ops.discard(None)
        if ops:
            bags[k] = bags[k] | bag(ops)
    return bags


def _semantic_rel(sem: np.ndarray, action: np.ndarray | None) -> np.ndarray:
    sem_rel = SEMANTIC_WEIGHT * np.clip((sem - SEMANTIC_FLOOR) / SEMANTIC_SPAN, 0.0, 1.0)
    return sem_rel if action is None else np.where(action, sem_rel, sem_rel * OTHER_ACTION)


def relevance(issue: Issue, c: Clusters, bags: list[frozenset[str]],
              semantic: Mapping[str, float] | SemanticFn | None) -> Relevance:
    """``semantic``: cosine per template id, or a function that gives it for the ids it is asked (lazily, through
    ``Relevance.need``); None or empty: words only."""
    m = Matcher(issue, bags)
    lex = m.scores(bags)
    if not semantic:
        return Relevance(lex, lex, np.zeros(len(c)), m, bags)
    action = None
    if m.has_action:
        action = np.array([any(f & b for f, _, kind in m.concepts if kind == "action") for b in bags], dtype=bool)
    if callable(semantic):
        return Relevance(lex.copy(), lex, np.zeros(len(c)), m, bags, list(c.template_id), semantic,
                         np.zeros(len(c), bool), action)
    sem = np.array([float(semantic.get(t, 0.0)) for t in c.template_id])
    return Relevance(np.maximum(lex, _semantic_rel(sem, action)), lex, sem, m, bags)


def incident_relevance(rv: Relevance, table: pa.Table, c: Clusters, root: int, root_row: int, chain_rows: np.ndarray,
                       order: np.ndarray) -> float:
    """The root cause with what followed it on its chain: the API calls that failed afterwards on the same
    request, instance or resource are the symptom the operator saw ("add volume … HTTP 409" after a build
    failed). What came before the root (the instance's creation, when a later delete failed) is history, not
    symptom, and does not count; and the operation the issue names must be the root's own, not one that merely
    followed it (a port created after an unrelated warning)."""
    later = chain_rows[order[chain_rows] >= order[root_row]]
    ops = {operation(m) for m in pc.take(table["message"], pa.array(later)).to_pylist() if m} - {None}
    return float(rv.matcher.score(rv.bags[root] | bag(ops), actions=rv.bags[root]))


def symptom_fit(issue: Issue, table: pa.Table, c: Clusters, links: Links, order: np.ndarray,
                strong: np.ndarray) -> np.ndarray:
    """1 for strong clusters on the requests that answered with the HTTP status the issue names ("nova API
    returns 503"), 0.8 for errors its service logged without any request id just before the first such answer
    (a token check that failed for every request); 0 elsewhere."""
    codes = {w[0] for w, k in zip(issue.concepts, issue.kinds) if k == STATUS}
    out = np.zeros(len(c))
    if not codes or not strong.any():
        return out
    msg = table["message"]
    hint = pc.match_substring_regex(msg, r"HTTP/1\.[01]\S* (?:status: )?(?:" + "|".join(sorted(codes)) + r")\b"
                                    r"|returned with HTTP (?:" + "|".join(sorted(codes)) + r")\b")
    rows = np.flatnonzero(pc.fill_null(hint, False).to_numpy(zero_copy_only=False))
    rows = [int(r) for r in rows if (operation(msg[int(r)].as_py() or "") or "").endswith(tuple(codes))]
    if not rows:
        return out
    rows = sorted(rows, key=lambda r: order[r])[:50]
    linked = np.unique(np.concatenate([links.request_rows(r) for r in rows]))
    on = np.zeros(len(c), bool)
    on[c.code[linked]] = True
    out[on & strong] = 1.0
    ids = pc.or_(pc.is_valid(table["request_id"]), pc.is_valid(table["instance_id"])).to_numpy(zero_copy_only=False)
    svc = pc.take(table["service"], pa.array(c.first_row)).to_pylist()
    first = rows[0]
    first_svc = table["service"][first].as_py()
    t1 = order[first]
    lone = strong & ~ids[c.first_row] & (c.first_t <= t1) & (c.first_t >= t1 - 120.0)
    for k in np.flatnonzero(lone):
        if svc[k] == first_svc:
            out[k] = max(out[k], 0.8)
    return out


def time_fit(c: Clusters, since: float | None) -> np.ndarray:
    """1 for what began at or after the time the operator named (or a little before); less for what ended long
    before it or began hours later."""
    if since is None:
        return np.ones(len(c))
    last = np.where(np.isfinite(c.last_ts), c.last_ts, c.first_t)
    w = np.where(c.first_t >= since - EARLY_S, 1.0, np.where(last >= since, 0.7, 0.3))
    return np.where(c.first_t > since + 6 * 3600, 0.5, w)


def host_of(source: str | None, service: str | None) -> str | None:
    """The host a file names after its service (``nova-compute-compute-2.log`` -> ``compute-2``)."""
    if not source or not service:
        return None
    from pathlib import PurePath

    stem = PurePath(source).name.split(".log")[0]
    if stem.startswith(service + "-") or stem.startswith(service.replace("-", "_") + "_"):
        rest = stem[len(service) + 1:]
        return rest or None
    return None


def host_codes(table: pa.Table) -> np.ndarray:
    """Per record, a code for the host its file names (-1 when the file names none)."""
    from ..parse.services import from_path

    src = pc.dictionary_encode(table["source"].combine_chunks())
    hosts = [host_of(p, from_path(p)) for p in src.dictionary.to_pylist()]
    known = {h: i for i, h in enumerate(sorted({h for h in hosts if h}))}
    lut = np.array([known.get(h, -1) for h in hosts] or [-1], dtype=np.int64)
    return lut[src.indices.to_numpy(zero_copy_only=False)]


def host_fit(issue: Issue, c: Clusters, table: pa.Table) -> np.ndarray:
    """1 where the record names the issue's host (in its file name or text), 0.6 where it does not."""
    if not issue.hosts or not len(c):
        return np.ones(len(c))
    take = pa.array(c.first_row)
    src = pc.take(table["source"], take).to_pylist()
    msg = pc.take(table["message"], take).to_pylist()
    pats = [re.compile(rf"(?<![\w.-]){re.escape(h)}(?![\w-])") for h in issue.hosts]
    out = np.full(len(c), 0.6)
    for k in range(len(c)):
        hay = f"{src[k] or ''} {msg[k] or ''}".lower()
        if any(p.search(hay) for p in pats):
            out[k] = 1.0
    return out


__all__ = ["NAMED", "Relevance", "SemanticFn", "cluster_bags", "host_fit", "host_of", "relevance", "time_fit", "words"]
