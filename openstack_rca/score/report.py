"""The most anomalous lines per session: what `rca score` and the demo print."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from .sessions import build_sessions


def top_anomalies(table: pa.Table, scores: pa.Table, *, per_session: int = 3, sessions: int = 10) -> list[dict]:
    if table.num_rows == 0:
        return []
    s = build_sessions(table)
    imp = scores["importance"].to_numpy()
    flag = scores["anomalous"].to_numpy(zero_copy_only=False)
    best = np.array([imp[s.rows(k)].max() for k in range(len(s))])
    cols = {c: table[c].to_pylist() for c in ("source", "line_no", "timestamp", "service", "level", "message")}
    anomaly = scores["anomaly"].to_numpy()
    expected = scores["expected"].to_pylist()
    out = []
    for k in np.argsort(-best, kind="stable")[:sessions]:
        rows = s.rows(int(k))
        top = rows[np.argsort(-imp[rows], kind="stable")[:per_session]]
        out.append({
            "session": s.keys[int(k)],
            "events": int(len(rows)),
            "anomalous_events": int(flag[rows].sum()),
            "max_importance": round(float(best[k]), 4),
            "lines": [
                {"source": cols["source"][r], "line_no": cols["line_no"][r], "timestamp": cols["timestamp"][r],
                 "service": cols["service"][r], "level": cols["level"][r], "text": cols["message"][r],
                 "anomaly": round(float(anomaly[r]), 4), "importance": round(float(imp[r]), 4),
                 "anomalous": bool(flag[r]), "expected": expected[r]}
                for r in top
            ],
        })
    return out
