"""Embeddings already computed, keyed by (model digest, text), in one SQLite file per machine.

The same templates recur in every run of a cloud (and in every corpus ingested from it), and operators re-ask the
same questions, so most embeddings are looked up, not computed: a cold process that finds all of its texts here
never loads the embedding model at all. SQLite in WAL mode with a busy timeout lets the CLI, the service and
several ingests share the file; a cache that cannot be opened or written only costs speed, never an answer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)
_CHUNK = 500  # parameters per SELECT ... IN (...), well under SQLite's limit


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    def __init__(self, path: Path, *, timeout_s: float = 10.0):
        self.path = Path(path)
        self.timeout_s = timeout_s
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()
        self._broken = False

    def _connect(self) -> sqlite3.Connection | None:
        if self._broken:
            return None
        if self._conn is None or self._pid != os.getpid():  # a forked child opens its own connection
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(self.path, timeout=self.timeout_s, check_same_thread=False,
                                       isolation_level=None)
                conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute("CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, key BLOB NOT NULL, "
                             "vec BLOB NOT NULL, PRIMARY KEY (model, key)) WITHOUT ROWID")
            except (sqlite3.Error, OSError) as exc:
                log.warning("embedding cache %s unavailable (%s); embeddings are computed each time", self.path, exc)
                self._broken = True
                return None
            self._conn, self._pid = conn, os.getpid()
        return self._conn

    def get(self, model: str, texts: Sequence[str], dim: int | None = None) -> dict[str, np.ndarray]:
        """The cached vectors among ``texts`` (float32, read-only); missing texts are absent."""
        keys = {_key(t): t for t in dict.fromkeys(texts)}
        out: dict[str, np.ndarray] = {}
        with self._lock:
            conn = self._connect()
            if conn is None or not keys:
                return out
            try:
                items = list(keys)
                for s in range(0, len(items), _CHUNK):
                    part = items[s:s + _CHUNK]
                    rows = conn.execute(f"SELECT key, vec FROM vectors WHERE model = ? AND key IN "
                                        f"({','.join('?' * len(part))})", [model, *part]).fetchall()
                    for k, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32)
                        if dim is None or len(vec) == dim:
                            out[keys[bytes(k)]] = vec
            except sqlite3.Error as exc:
                log.warning("embedding cache read failed (%s)", exc)
        return out

    def put(self, model: str, texts: Sequence[str], vectors: np.ndarray) -> None:
        rows = [(model, _key(t), np.ascontiguousarray(v, dtype=np.float32).tobytes())
                for t, v in zip(texts, vectors)]
        if not rows:
            return
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO vectors (model, key, vec) VALUES (?, ?, ?)", rows)
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                log.warning("embedding cache write failed (%s)", exc)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
