"""Embeddings already computed, keyed by (model digest, text), in one SQLite file per machine.

The same templates recur in every run of a cloud (and in every corpus ingested from it), and operators re-ask the
same questions, so most embeddings are looked up, not computed: a cold process that finds all of its texts here
never loads the embedding model at all. SQLite in WAL mode with a busy timeout lets the CLI, the service and
several ingests share the file; a cache that cannot be opened or written only costs speed, never an answer.
It is bounded (``max_vectors``, ~1.5 KB each): past the bound a write drops the least recently written tenth.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)
_CHUNK = 500  # parameters per SELECT ... IN (...), well under SQLite's limit


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    def __init__(self, path: Path, *, timeout_s: float = 10.0, max_vectors: int = 200_000):
        if max_vectors < 1:
            raise ValueError(f"max_vectors must be >= 1 (got {max_vectors})")
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.max_vectors = max_vectors
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
                             "vec BLOB NOT NULL, at REAL NOT NULL DEFAULT 0, PRIMARY KEY (model, key)) WITHOUT ROWID")
                cols = {r[1] for r in conn.execute("PRAGMA table_info(vectors)")}
                if "at" not in cols:  # a cache written before it was bounded: its rows count as the oldest
                    conn.execute("ALTER TABLE vectors ADD COLUMN at REAL NOT NULL DEFAULT 0")
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
        now = time.time()
        rows = [(model, _key(t), np.ascontiguousarray(v, dtype=np.float32).tobytes(), now)
                for t, v in zip(texts, vectors)]
        if not rows:
            return
        with self._lock:
            conn = self._connect()
            if conn is None:
                return
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany("INSERT OR REPLACE INTO vectors (model, key, vec, at) VALUES (?, ?, ?, ?)", rows)
                n = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                if n > self.max_vectors:  # down to 90% of the bound, the least recently written first
                    drop = n - int(self.max_vectors * 0.9)
                    conn.execute("DELETE FROM vectors WHERE (model, key) IN (SELECT model, key FROM vectors "
                                 "ORDER BY at LIMIT ?)", (drop,))
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                log.warning("embedding cache write failed (%s)", exc)
                try:
                    conn.execute("ROLLBACK")
                except sqlite3.Error:
                    pass

    def info(self) -> dict:
        """What an operator asks of it (``rca cache info``): where, how many vectors, how many bytes on disk."""
        files = [self.path, self.path.with_name(self.path.name + "-wal")]
        out = {"path": str(self.path), "vectors": 0, "max_vectors": self.max_vectors,
               "bytes": sum(f.stat().st_size for f in files if f.is_file())}
        if not self.path.is_file():
            return out
        with self._lock:
            conn = self._connect()
            if conn is not None:
                try:
                    out["vectors"] = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                except sqlite3.Error as exc:
                    log.warning("embedding cache read failed (%s)", exc)
        return out

    def clear(self) -> int:
        """Drop every cached vector (the exported ONNX model beside it stays); -> how many there were."""
        with self._lock:
            conn = self._connect()
            if conn is None:
                return 0
            try:
                n = conn.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]
                conn.execute("DELETE FROM vectors")
                conn.execute("VACUUM")
                return n
            except sqlite3.Error as exc:
                log.warning("embedding cache clear failed (%s)", exc)
                return 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None
