"""From scored template clusters to an incident, its onset and the earliest unexpected event.

* ``suspicion``: how unexpected a cluster is: DeepLog's verdict on its occurrences, whether the model had ever
  seen the template (a template that only looks new because a variable was not masked counts little), how much
  more often it occurs than training predicts, and its level.
* incidents: suspicious WARNING+ clusters grouped by time (a quiet gap splits them); the one the issue points at
  (its words, its time) is the incident analysed.
* onset weight: evidence that starts with the incident ranks above what follows it; what came long before is
  background, not cause.
* root cause: the earliest suspicious cluster at the incident's start: the first symptom of the causal chain,
  not the loudest error after it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .clusters import Clusters

STRONG = 0.6  # suspicion of a cluster that can open an incident (with level WARNING or above)
SUSPICIOUS = 0.5  # suspicion of a cluster that can be the root cause
PRE_ONSET_S = 120.0  # how far before the first strong cluster a quieter first symptom may start
GAP_S = 600.0  # a quiet gap this long separates two incidents
DEBUG_SEVERITY = 0.05


def _prefix(template: str, n: int = 4) -> tuple[str, ...]:
    return tuple(w for w in template.split() if "<*>" not in w)[:n]


def near_known(templates: list[str], known: list[str]) -> np.ndarray:
    """Templates that share their first words with one the model knows: a variant, not a new event."""
    prefixes = {_prefix(t) for t in known}
    return np.array([len(p) >= 3 and p in prefixes for p in map(_prefix, templates)], dtype=bool)


def suspicion(c: Clusters, near: np.ndarray) -> np.ndarray:
    novelty = np.where(c.novel, np.where(near, 0.25, 1.0), np.clip(np.log(c.burst) / np.log(100.0), 0.0, 1.0))
    return c.anomalous_frac * (0.5 * novelty + 0.3 * c.severity + 0.2 * c.anomaly_max)


@dataclass(frozen=True)
class Incident:
    onset: float  # epoch seconds of its first strong cluster (NaN: no incident)
    end: float
    members: np.ndarray  # cluster indexes of its strong clusters
    strength: float  # highest suspicion among them


def incidents(c: Clusters, susp: np.ndarray) -> list[Incident]:
    strong = np.flatnonzero((susp >= STRONG) & (c.severity >= 0.6) & np.isfinite(c.first_ts))
    if len(strong) == 0:
        return []
    strong = strong[np.argsort(c.first_ts[strong], kind="stable")]
    out: list[list[int]] = [[int(strong[0])]]
    for k in strong[1:]:
        if c.first_ts[k] - c.first_ts[out[-1][-1]] > GAP_S:
            out.append([])
        out[-1].append(int(k))
    return [Incident(float(c.first_ts[m[0]]), float(c.first_ts[m[-1]]), np.array(m), float(susp[m].max()))
            for m in out]


def pick_incident(found: list[Incident], relevance: np.ndarray, since: float | None) -> Incident | None:
    """The incident the issue is about: strongest, most relevant to the issue's words, closest to its time."""
    if not found:
        return None

    def fit(inc: Incident) -> float:
        rel = float(relevance[inc.members].max()) if len(inc.members) else 0.0
        when = 1.0
        if since is not None:
            # an incident that began well before the named time was already there; one long after is another
            if inc.end < since - 900:
                when = 0.3
            elif inc.onset > since + 6 * 3600:
                when = 0.5
        return inc.strength * (0.5 + 0.5 * rel) * when

    return max(found, key=fit)


def onset_weight(first_ts: np.ndarray, onset: float) -> np.ndarray:
    """1 at the onset; decays to 0.55 for what follows; decays to 0 for what came long before."""
    if not np.isfinite(onset):
        return np.full(len(first_ts), 0.5)
    dt = first_ts - onset
    w = np.where(dt > 0, 0.55 + 0.45 * np.exp(-np.maximum(dt, 0) / 120.0),
                 np.where(dt >= -PRE_ONSET_S, 1.0, np.exp((np.minimum(dt, 0) + PRE_ONSET_S) / 300.0)))
    return np.where(np.isfinite(dt), w, 0.5)


def root_cause(c: Clusters, susp: np.ndarray, incident: Incident) -> int:
    """The earliest suspicious, non-DEBUG cluster that starts within the incident's opening."""
    dt = c.first_ts - incident.onset
    cand = np.flatnonzero((susp >= SUSPICIOUS) & (c.severity > DEBUG_SEVERITY) & (dt >= -PRE_ONSET_S) & (dt <= 60))
    if len(cand) == 0:
        return int(incident.members[0])
    return int(cand[np.argsort(c.first_ts[cand], kind="stable")][0])
