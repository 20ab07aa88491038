"""Template clusters: every distinct template in the logs, with what the engine needs to judge it.

Evidence is ranked per template, not per line: fifty copies of one error are one finding (reported at its first
occurrence, with the count), and a one-off line is not drowned by a repeated one. All columns are computed with
numpy over the whole table at once; a 100k-line corpus has a few hundred clusters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..parse.timestamps import template_occurrences
from ..score import anomaly as anomaly_mod


@dataclass(frozen=True)
class Clusters:
    template_id: list[str]
    template: list[str]
    code: np.ndarray  # per record: its cluster index
    count: np.ndarray  # records per cluster
    first_row: np.ndarray  # table row of the earliest occurrence (by time, then file position)
    first_ts: np.ndarray  # epoch seconds of it (NaN when no occurrence has a timestamp)
    last_ts: np.ndarray
    anomalous_frac: np.ndarray  # share of occurrences DeepLog flagged
    anomaly_max: np.ndarray
    importance_max: np.ndarray
    severity: np.ndarray  # highest level among occurrences (0..1)
    novel: np.ndarray  # the model never saw this template in training
    burst: np.ndarray  # occurrences here / occurrences the training rate predicts (>= 1 means more than usual)
    sessions: np.ndarray  # distinct sessions the template appears in

    def __len__(self) -> int:
        return len(self.template_id)

    def rows(self, k: int) -> np.ndarray:
        return np.flatnonzero(self.code == k)


def build_clusters(table: pa.Table, scores: pa.Table, epoch: np.ndarray, session_codes: np.ndarray, *,
                   train_counts: np.ndarray, encoded: np.ndarray, train_total: int) -> Clusters:
    n = table.num_rows
    occ = template_occurrences(table["template_id"], epoch)
    code, ids, count, first_row = occ["code"], occ["ids"], occ["count"], occ["first_row"]
    first_ts, last_ts = occ["first_ts"], occ["last_ts"]
    k = len(ids)

    flag = scores["anomalous"].to_numpy(zero_copy_only=False).astype(float)
    anom = scores["anomaly"].to_numpy()
    imp = scores["importance"].to_numpy()
    lv = pc.dictionary_encode(pc.fill_null(table["level"].combine_chunks(), ""))
    sev = anomaly_mod.severity(lv.dictionary.to_pylist())[lv.indices.to_numpy(zero_copy_only=False)]
    amax = np.zeros(k)
    np.maximum.at(amax, code, anom)
    imax = np.zeros(k)
    np.maximum.at(imax, code, imp)
    smax = np.zeros(k)
    np.maximum.at(smax, code, sev)
    frac = np.bincount(code, weights=flag, minlength=k) / np.maximum(count, 1)

    cenc = encoded[first_row]
    novel = cenc == 1  # UNK
    trained = train_counts[np.clip(cenc, 0, len(train_counts) - 1)].astype(float)
    trained[novel] = 0.0
    expected = trained * (n / max(train_total, 1))
    burst = (count + 1.0) / (expected + 1.0)

    pairs = np.unique(code * (int(session_codes.max(initial=0)) + 1) + session_codes)
    sessions = np.bincount(pairs // (int(session_codes.max(initial=0)) + 1), minlength=k)

    templates = pc.take(table["template"], pa.array(first_row)).to_pylist()
    return Clusters(ids, templates, code, count, first_row, first_ts, last_ts, frac, amax, imax, smax, novel,
                    burst, sessions)
