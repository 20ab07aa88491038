"""Sessions: the sequences DeepLog learns from.

A record belongs to the life of the instance it names, else to the request it serves, else to the stream of the
process that wrote it (service + pid, or the file when there is no pid). Within a session records are ordered by
time, and by file position when timestamps tie or are missing, so multi-service sessions (one request id across
nova-api, conductor and compute) interleave the way they happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def session_keys(table: pa.Table) -> pa.Array:
    """``instance:<uuid>`` / ``request:<req-id>`` / ``stream:<service>:<pid>`` (``stream:<source>`` without pid)."""
    n = table.num_rows
    if n == 0:
        return pa.array([], pa.string())
    inst = pc.binary_join_element_wise("instance:", table["instance_id"], "")
    req = pc.binary_join_element_wise("request:", table["request_id"], "")
    svc = pc.fill_null(table["service"], "unknown")
    pid = pc.cast(table["pid"], pa.string())
    by_pid = pc.binary_join_element_wise("stream", svc, pid, ":")  # null where pid is null
    by_file = pc.binary_join_element_wise("stream:", table["source"], "")
    keys = pc.coalesce(inst, req, by_pid, by_file)
    return keys.combine_chunks() if isinstance(keys, pa.ChunkedArray) else keys


@dataclass(frozen=True)
class Sessions:
    """Records grouped and ordered: ``order[starts[k]:starts[k+1]]`` are the table rows of session ``k``."""

    keys: list[str]
    order: np.ndarray  # row indexes into the table, session by session, in event order
    starts: np.ndarray  # len(keys) + 1 offsets into ``order``

    def __len__(self) -> int:
        return len(self.keys)

    def rows(self, k: int) -> np.ndarray:
        return self.order[self.starts[k] : self.starts[k + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.starts)


def build_sessions(table: pa.Table) -> Sessions:
    if table.num_rows == 0:
        return Sessions([], np.zeros(0, np.int64), np.zeros(1, np.int64))
    keys = session_keys(table)
    work = pa.table({
        "key": keys,
        "ts": table["timestamp"],
        "source": table["source"],
        "line": table["line_no"],
        "row": pa.array(np.arange(table.num_rows, dtype=np.int64)),
    })
    idx = pc.sort_indices(
        work,
        sort_keys=[("key", "ascending", "at_end"), ("ts", "ascending", "at_end"), ("source", "ascending", "at_end"),
                   ("line", "ascending", "at_end")],
    )
    ordered = work.take(idx)
    order = ordered["row"].to_numpy()
    sorted_keys = ordered["key"].combine_chunks()
    # a session starts wherever the key differs from the previous row's
    change = pc.not_equal(sorted_keys.slice(1), sorted_keys.slice(0, len(sorted_keys) - 1)).to_numpy(zero_copy_only=False)
    starts = np.concatenate(([0], np.flatnonzero(change) + 1, [len(order)])).astype(np.int64)
    names = pc.take(sorted_keys, pa.array(starts[:-1])).to_pylist()
    return Sessions(names, order, starts)
