"""From next-event probabilities to per-record scores, DeepLog's diagnosis, and importance.

* ``anomaly``: how surprising the event was, -log p normalised by log |V| to 0..1;
* ``anomalous``: DeepLog's rule, the event is not among the g most likely;
* ``expected``: the templates the model expected instead (for the report);
* ``importance``: anomaly combined with severity and rarity, what "LSTM importance filtering" ranks by.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SEVERITY = {"DEBUG": 0.05, "INFO": 0.2, "WARNING": 0.6, "ERROR": 0.9, "CRITICAL": 1.0, "TRACE": 0.9}
UNPARSED_SEVERITY = 0.4
WEIGHTS = (0.6, 0.25, 0.15)  # anomaly, severity, rarity


@dataclass(frozen=True)
class Scores:
    p: np.ndarray  # probability the model gave the event that happened
    rank: np.ndarray  # how many events the model found likelier (0 = the most expected)
    anomalous: np.ndarray  # rank >= top_g
    anomaly: np.ndarray  # 0..1
    expected: np.ndarray  # [n, k] vocabulary indexes the model expected most


def score(probs: np.ndarray, actual: np.ndarray, top_g: int, *, expected_k: int = 3) -> Scores:
    n, v = probs.shape if probs.ndim == 2 else (0, 1)
    if n == 0:
        empty = np.zeros(0)
        return Scores(empty, empty.astype(int), empty.astype(bool), empty, np.zeros((0, expected_k), int))
    p = probs[np.arange(n), actual]
    rank = (probs > p[:, None]).sum(axis=1)
    anomaly = np.clip(-np.log(np.maximum(p, 1e-12)) / np.log(max(v, 2)), 0.0, 1.0)
    return Scores(p, rank, rank >= top_g, anomaly, top_k(probs, min(expected_k, v)))


def top_k(probs: np.ndarray, k: int) -> np.ndarray:
    """Indexes of each row's ``k`` largest values, largest first (ties: lower index first). ``k`` is a handful, so
    ``k`` argmax passes beat sorting all |V| columns, which was a third of scoring's time."""
    if k >= probs.shape[1]:
        return np.argsort(-probs, axis=1, kind="stable")[:, :k]
    work = np.array(probs, copy=True)
    rows = np.arange(len(work))
    out = np.empty((len(work), k), np.int64)
    for j in range(k):
        out[:, j] = work.argmax(axis=1)
        work[rows, out[:, j]] = -np.inf
    return out


def rarity(counts: np.ndarray) -> np.ndarray:
    """1 for a template seen once in training (or never), towards 0 for the most frequent one."""
    counts = np.maximum(np.asarray(counts, dtype=float), 1.0)
    top = max(float(counts.max(initial=1.0)), 2.0)
    return 1.0 - np.log(counts) / np.log(top)


def severity(levels: list) -> np.ndarray:
    return np.array([SEVERITY.get(lv, UNPARSED_SEVERITY) if lv else UNPARSED_SEVERITY for lv in levels])


def importance(anomaly: np.ndarray, sev: np.ndarray, rare: np.ndarray) -> np.ndarray:
    a, s, r = WEIGHTS
    return a * anomaly + s * sev + r * rare
