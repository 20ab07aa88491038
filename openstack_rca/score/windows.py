"""DeepLog windows: for every event, the ``h`` events before it in its session predict it.

Built with numpy index arithmetic (no per-event Python), so windows for a million records cost a few hundred
milliseconds. The first events of a session get left-padded windows, which lets every record be scored — a
session that *starts* unusually is a signal too.
"""

from __future__ import annotations

import numpy as np

from ..errors import InvalidInput
from .sessions import Sessions
from .vocabulary import PAD


def windows(sessions: Sessions, encoded: np.ndarray, h: int = 10) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(X, y, rows)``: ``X[i]`` the ``h`` previous event indexes of event ``i`` (PAD-filled at the session
    start), ``y[i]`` its own index, ``rows[i]`` its row in the record table.

    ``encoded`` holds each table row's vocabulary index (``Vocabulary.encode(table["template_id"])``).
    """
    if h < 1:
        raise InvalidInput(f"window must be >= 1 (got {h}); pass --window 10")
    order = sessions.order
    n = len(order)
    if n == 0:
        return np.zeros((0, h), np.int32), np.zeros(0, np.int32), np.zeros(0, np.int64)
    seq = np.asarray(encoded, dtype=np.int32)[order]  # events in session order
    starts = np.repeat(sessions.starts[:-1], sessions.lengths())  # each event's session start
    pos = np.arange(n, dtype=np.int64)
    idx = pos[:, None] - h + np.arange(h, dtype=np.int64)[None, :]
    valid = idx >= starts[:, None]
    X = np.where(valid, seq[np.clip(idx, 0, None)], PAD).astype(np.int32)
    return X, seq, order
