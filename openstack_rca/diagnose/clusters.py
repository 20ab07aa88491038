"""Template clusters: every distinct template in the logs, with what the engine needs to judge it.

Evidence is ranked per template, not per line: fifty copies of one error are one finding (reported at its first
occurrence, with the count), and a one-off line is not drowned by a repeated one. All columns are computed with
numpy over the whole table at once; a 100k-line corpus has a few hundred clusters.

Two kinds of column: what the logs say by themselves (severity with tracebacks, housekeeping, words of trouble,
how the template spreads over time) and what the model says (DeepLog's verdict, whether it ever saw the template,
how much more often it occurs than training predicts). The first kind always counts; the second only as far as
the model knows these logs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..parse.timestamps import template_occurrences
from . import housekeeping as hk

SPREAD_BUCKETS = 24


@dataclass(frozen=True)
class Clusters:
    template_id: list[str]
    template: list[str]
    code: np.ndarray  # per record: its cluster index
    count: np.ndarray  # records per cluster
    first_row: np.ndarray  # table row of the earliest occurrence (by the engine's clock, then file position)
    first_t: np.ndarray  # the engine's clock at that occurrence (finite)
    first_ts: np.ndarray  # its real timestamp (NaN when the record had none)
    last_ts: np.ndarray
    severity: np.ndarray  # highest among occurrences (0..1): level, raised by a traceback or words of trouble
    traceback: np.ndarray  # bool: an occurrence carries a traceback
    housekeeping: np.ndarray  # bool: routine by what it says (never raised to an error)
    trouble: np.ndarray  # bool: words of trouble in the template
    spread: np.ndarray  # share of the time buckets after its first occurrence in which it occurs again
    anomalous_frac: np.ndarray  # share of occurrences DeepLog flagged
    anomaly_max: np.ndarray
    importance_max: np.ndarray
    novel: np.ndarray  # the model never saw this template in training
    burst: np.ndarray  # occurrences here / occurrences the training rate predicts (>= 1 means more than usual)
    record_severity: np.ndarray  # per record (not per cluster): its own severity

    def __len__(self) -> int:
        return len(self.template_id)

    def rows(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.code == k)


def record_traits(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Per record: whether it carries a traceback (or an extracted exception), and its severity (0..1)."""
    tb = pc.or_(pc.match_substring(pc.fill_null(table["raw"], ""), hk.TRACEBACK),
                pc.is_valid(table["exception"])).to_numpy(zero_copy_only=False)
    tid = pc.dictionary_encode(table["template_id"].combine_chunks())
    first = _first_index(tid.indices.to_numpy(zero_copy_only=False), len(tid.dictionary))
    templates = pc.take(table["template"], pa.array(first)).to_pylist() if len(first) else []
    trouble_t = np.array([hk.says_trouble(t) for t in templates], dtype=bool)
    trouble = trouble_t[tid.indices.to_numpy(zero_copy_only=False)] if len(trouble_t) else np.zeros(0, bool)
    lv = pc.dictionary_encode(pc.fill_null(table["level"].combine_chunks(), ""))
    sev = hk.level_severity([x or None for x in lv.dictionary.to_pylist()])[lv.indices.to_numpy(zero_copy_only=False)]
    return tb, hk.adjust(sev, tb, trouble)


def _first_index(codes: np.ndarray, k: int) -> np.ndarray:
    first = np.full(k, len(codes), np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return first


def build_clusters(table: pa.Table, scores: pa.Table, order: np.ndarray, epoch: np.ndarray, *,
                   train_counts: np.ndarray, encoded: np.ndarray, train_total: int) -> Clusters:
    n = table.num_rows
    occ = template_occurrences(table["template_id"], order)
    code, ids, count, first_row = occ["code"], occ["ids"], occ["count"], occ["first_row"]
    k = len(ids)
    first_t = order[first_row] if k else np.zeros(0)
    first_ts = epoch[first_row] if k else np.zeros(0)
    last = np.full(k, -np.inf)
    ok = np.isfinite(epoch)
    np.maximum.at(last, code[ok], epoch[ok])
    last_ts = np.where(np.isfinite(last), last, np.nan)

    tb_rec, sev_rec = record_traits(table)
    sev = np.zeros(k)
    np.maximum.at(sev, code, sev_rec)
    tb = np.zeros(k, bool)
    np.logical_or.at(tb, code, tb_rec)
    templates = pc.take(table["template"], pa.array(first_row)).to_pylist() if k else []
    loggers = pc.take(table["component"], pa.array(first_row)).to_pylist() if k else []
    house = np.array([hk.is_housekeeping(t, lg) for t, lg in zip(templates, loggers)], dtype=bool) & (sev < 0.9)
    trouble = np.array([hk.says_trouble(t) for t in templates], dtype=bool)

    # how a template spreads in time: chronic chatter recurs in most buckets from its first appearance on
    lo, hi = (float(order.min()), float(order.max())) if n else (0.0, 0.0)
    width = max((hi - lo) / SPREAD_BUCKETS, 1e-9)
    bucket = np.clip(((order - lo) / width).astype(np.int64), 0, SPREAD_BUCKETS - 1)
    seen = np.zeros((k, SPREAD_BUCKETS), bool)
    seen[code, bucket] = True
    first_bucket = bucket[first_row] if k else np.zeros(0, np.int64)
    spread = (seen.sum(axis=1) - 1) / np.maximum(SPREAD_BUCKETS - 1 - first_bucket, 1)

    flag = scores["anomalous"].to_numpy(zero_copy_only=False).astype(float)
    anom = scores["anomaly"].to_numpy()
    imp = scores["importance"].to_numpy()
    amax = np.zeros(k)
    np.maximum.at(amax, code, anom)
    imax = np.zeros(k)
    np.maximum.at(imax, code, imp)
    frac = np.bincount(code, weights=flag, minlength=k) / np.maximum(count, 1)

    cenc = encoded[first_row] if k else np.zeros(0, np.int64)
    novel = cenc == 1  # UNK
    trained = train_counts[np.clip(cenc, 0, len(train_counts) - 1)].astype(float)
    trained[novel] = 0.0
    expected = trained * (n / max(train_total, 1))
    burst = (count + 1.0) / (expected + 1.0)
    return Clusters(ids, templates, code, count, first_row, first_t, first_ts, last_ts, sev, tb, house, trouble,
                    np.clip(spread, 0.0, 1.0), frac, amax, imax, novel, burst, sev_rec)
