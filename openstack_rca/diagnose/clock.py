"""One clock for ordering records from many files: timestamps where there are any, line order where not.

* A record without a timestamp inside a timestamped file (a header-less remnant) takes its neighbour's time.
* A file whose clock runs backwards (an NTP step, a service restart on another timezone) keeps its own line order:
  its times never decrease.
* A file without any timestamp (DevStack message-only logs, ``journalctl -o cat``) uses line order as time: one
  pseudo-second per record when nothing has a timestamp, else spread over the timestamped span.

``order`` is what the engine sorts and windows by; ``timed`` says which records carried a real timestamp, so the
report shows none where there was none.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


@dataclass(frozen=True)
class Clock:
    order: np.ndarray  # seconds, finite for every record
    timed: np.ndarray  # bool: the record carried a timestamp
    untimed_files: int  # files without any timestamp, ordered by their lines
    line_order_only: bool  # no record has a timestamp: every time is a line position

    @property
    def note(self) -> str | None:
        if self.line_order_only:
            return "no record carries a timestamp: line order stands in for time (one step per record)"
        if self.untimed_files:
            return (f"{self.untimed_files} file(s) carry no timestamps: their line order is spread over the others' "
                    "time span, so cross-file order with them is approximate")
        return None


def _ffill(values: np.ndarray) -> np.ndarray:
    ok = np.isfinite(values)
    if ok.all() or not ok.any():
        return values
    idx = np.where(ok, np.arange(len(values)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = values[idx]
    first = int(np.argmax(ok))
    out[:first] = values[first]
    return out


def build(table: pa.Table, epoch: np.ndarray) -> Clock:
    n = table.num_rows
    timed = np.isfinite(epoch)
    if n == 0:
        return Clock(np.zeros(0), timed, 0, False)
    if not timed.any():
        # one step per record, files one after another in the order they were given
        return Clock(np.arange(n, dtype=float), timed, len(pc.unique(table["source"])), True)
    src = pc.dictionary_encode(table["source"].combine_chunks())
    codes = src.indices.to_numpy(zero_copy_only=False)
    line = table["line_no"].to_numpy(zero_copy_only=False).astype(float)
    order = epoch.copy()
    untimed: list[np.ndarray] = []
    for f in range(len(src.dictionary)):
        rows = np.flatnonzero(codes == f)
        rows = rows[np.argsort(line[rows], kind="stable")]
        vals = epoch[rows]
        if np.isfinite(vals).any():
            order[rows] = np.maximum.accumulate(_ffill(vals))
        else:
            untimed.append(rows)
    done = np.isfinite(order)
    lo, hi = float(order[done].min()), float(order[done].max())
    for rows in untimed:
        frac = np.arange(len(rows), dtype=float) / max(len(rows) - 1, 1)
        order[rows] = lo + frac * (hi - lo)
    return Clock(order, timed, len(untimed), False)
