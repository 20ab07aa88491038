"""Corpora on a local (POSIX) filesystem, safe under concurrent writers, readers and crashes.

Layout of ``<root>/<name>/``: ``v-<time>-<random>/`` immutable versions (records, scores, vectors, meta);
``CURRENT``, the published version's id and the one before it, replaced atomically; ``.lock``, flocked by
writers. A writer stages a version in ``.staging-<id>/`` (names starting with '.' are never corpus names),
renames it to ``v-<id>`` and then replaces ``CURRENT``: a crash at any point leaves the previous version
published, and ``cleanup`` removes the leftovers. Readers never lock: they resolve ``CURRENT`` once and read
that version, which stays on disk for ``grace_s`` after it is superseded twice.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pyarrow as pa

from ..corpus import FILES, Corpus, Vectors, open_current, read_version, stamp_meta, write_version
from ..errors import RCAError
from ..retrieve.index import collection_name
from .fs import flock, fsync_dir, fsync_file, replace_text, storage_error

log = logging.getLogger(__name__)
CURRENT, LOCK, STAGING = "CURRENT", ".lock", ".staging-"
LEGACY = "legacy"  # a corpus written before versions: its files sit in the corpus directory itself
_VERSION = re.compile(r"v-[0-9A-Za-z-]{1,64}")


def _new_id() -> str:
    ns = time.time_ns()
    return f"v-{time.strftime('%Y%m%dT%H%M%S', time.gmtime(ns // 10**9))}{ns % 10**9:09d}-{secrets.token_hex(4)}"


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class LocalCorpusStore:
    def __init__(self, root: Path, *, lock_timeout_s: float = 5.0, grace_s: float = 60.0):
        if lock_timeout_s < 0 or grace_s < 0:
            raise ValueError(f"lock_timeout_s and grace_s must be >= 0 (got {lock_timeout_s}, {grace_s})")
        self.root = Path(root)
        self.lock_timeout_s = lock_timeout_s
        self.grace_s = grace_s
        self.skipped: list[dict[str, str]] = []  # what the last list() left out, and why

    def _dir(self, name: str) -> Path:
        collection_name(name)  # validates the name: letters, digits, '.', '_', '-', never a leading '.'
        return self.root / name

    def _pointer(self, d: Path) -> list[str]:
        try:
            ids = (d / CURRENT).read_text().split()
        except (FileNotFoundError, NotADirectoryError):
            return [LEGACY] if (d / "meta.json").is_file() else []
        return [i for i in ids if _VERSION.fullmatch(i)]

    def _vdir(self, d: Path, vid: str) -> Path:
        return d if vid == LEGACY else d / vid

    # -- readers ---------------------------------------------------------------------------------------------
    def current(self, name: str) -> str | None:
        return (self._pointer(self._dir(name)) or [None])[0]

    def open(self, name: str) -> Corpus:
        d = self._dir(name)
        return open_current(self, name, lambda vid: read_version(self._vdir(d, vid), name, vid),
                            (OSError, ValueError, pa.ArrowException))

    def list(self) -> list[dict[str, Any]]:
        rows, self.skipped = [], []
        if not self.root.is_dir():
            return rows
        for d in sorted(self.root.iterdir()):
            try:
                self._dir(d.name)
            except ValueError:
                continue  # staging, trash, stray files
            for attempt in range(2):
                try:
                    vid = self.current(d.name)
                    if vid is None:
                        if (d / CURRENT).exists():
                            self._skip(d.name, "its version pointer is unreadable")
                        break
                    meta = json.loads((self._vdir(d, vid) / "meta.json").read_text())
                    if not isinstance(meta, dict) or "name" not in meta:
                        raise ValueError("not a corpus description")
                    rows.append(meta)
                    break
                except FileNotFoundError:
                    if attempt:  # the version was collected between resolving and reading: look once more
                        self._skip(d.name, "its current version is missing")
                except (OSError, ValueError) as exc:
                    self._skip(d.name, f"meta.json is unreadable ({type(exc).__name__})")
                    break
        return rows

    def _skip(self, name: str, why: str) -> None:
        log.warning("corpus %r left out of the listing: %s; ingest it again", name, why)
        self.skipped.append({"name": name, "error": why})

    # -- writers ---------------------------------------------------------------------------------------------
    def publish(self, name: str, table: pa.Table, scores: pa.Table, meta: dict[str, Any],
                vectors: Vectors | None = None) -> str:
        with self.writer(name) as w:
            return w.publish(table, scores, meta, vectors)

    @contextlib.contextmanager
    def writer(self, name: str) -> Iterator["_Writer"]:
        """Hold the corpus's writer lock (StoreBusy after lock_timeout_s) across work that must match what gets
        published, e.g. its Chroma collection: another ingest of the name cannot interleave with it."""
        with self._locked(name, self.lock_timeout_s):
            yield _Writer(self, name)

    @contextlib.contextmanager
    def _locked(self, name: str, timeout_s: float) -> Iterator[Path]:
        d = self._dir(name)
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, f"corpus {name!r}") from None
        with flock(d / LOCK, timeout_s, f"corpus {name!r}"):
            yield d

    def rescore(self, base: Corpus, scores: pa.Table, **meta: Any) -> Corpus | None:
        d = self._dir(base.name)
        src = self._vdir(d, base.version)
        new_meta = stamp_meta(base.name, base.table, {**base.meta, **meta})

        def fill(stage: Path) -> None:  # copy-on-write: the records and vectors are the base version's
            for f in ("records.parquet", "vectors.parquet"):
                if (src / f).is_file():
                    _link_or_copy(src / f, stage / f)
            write_version(stage, None, scores, new_meta)

        with self._locked(base.name, 0.0) as d:
            vid = self._write_locked(d, fill, expect=base.version)
        return None if vid is None else Corpus(base.name, base.table, scores, new_meta, base.vectors, vid)

    def _write_locked(self, d: Path, fill: Callable[[Path], None], expect: str | None = None) -> str | None:
        """Stage, rename, point CURRENT at it; the caller holds the corpus's lock."""
        what = f"corpus {d.name!r}"
        before = self._pointer(d)
        if expect is not None and before[:1] != [expect]:
            return None  # another version was published meanwhile: it wins
        vid = _new_id()
        stage, final = d / f"{STAGING}{vid}", d / vid
        try:
            stage.mkdir()
            fill(stage)
            for f in stage.iterdir():
                fsync_file(f)
            fsync_dir(stage)
            os.rename(stage, final)
            replace_text(d / CURRENT, "\n".join([vid, *before[:1]]) + "\n")
        except BaseException as exc:
            shutil.rmtree(stage, ignore_errors=True)
            if self._pointer(d)[:1] != [vid]:
                shutil.rmtree(final, ignore_errors=True)
            if isinstance(exc, OSError):
                raise storage_error(exc, what) from None
            raise
        if before and before[0] != LEGACY:
            try:
                os.utime(d / before[0])  # retired now: readers may hold it for grace_s from here
            except OSError:
                pass
        self._collect(d)
        return vid

    def delete(self, name: str) -> None:
        d = self._dir(name)
        if not d.is_dir():
            return
        with flock(d / LOCK, self.lock_timeout_s, f"corpus {name!r}"):
            trash = self.root / f".deleted-{secrets.token_hex(6)}"
            os.rename(d, trash)  # gone for readers at once; the files go after
        shutil.rmtree(trash, ignore_errors=True)

    # -- housekeeping ----------------------------------------------------------------------------------------
    def _collect(self, d: Path, *, orphans: bool = False) -> int:
        """Remove versions nobody can hold: not current, not the previous one, retired over grace_s ago.
        With ``orphans`` (only under the lock) also staging dirs and pointer temp files of killed writers."""
        keep = set(self._pointer(d)[:2])
        cutoff = time.time() - self.grace_s
        removed = 0
        for p in d.iterdir():
            try:
                if _VERSION.fullmatch(p.name) and p.name not in keep and p.stat().st_mtime <= cutoff:
                    shutil.rmtree(p)
                elif orphans and p.name.startswith(STAGING):
                    shutil.rmtree(p)
                elif orphans and p.name.startswith(f".{CURRENT}."):
                    p.unlink()
                elif p.name in FILES and LEGACY not in keep and p.stat().st_mtime <= cutoff:
                    p.unlink()  # a pre-versions corpus that has been published again
                else:
                    continue
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def cleanup(self) -> dict[str, int]:
        """Call at start: each corpus not being written now loses its leftovers."""
        out = {"removed": 0, "busy": 0}
        if not self.root.is_dir():
            return out
        for p in self.root.iterdir():
            if p.name.startswith(".deleted-"):
                shutil.rmtree(p, ignore_errors=True)
                out["removed"] += 1
                continue
            try:
                self._dir(p.name)
            except ValueError:
                continue
            if not p.is_dir():
                continue
            try:
                with flock(p / LOCK, 0.0, f"corpus {p.name!r}"):
                    out["removed"] += self._collect(p, orphans=True)
            except RCAError:
                out["busy"] += 1
        return out


class _Writer:
    """What ``LocalCorpusStore.writer`` yields: publishes while the lock is held."""

    def __init__(self, store: LocalCorpusStore, name: str):
        self.store, self.name = store, name

    def publish(self, table: pa.Table, scores: pa.Table, meta: dict[str, Any], vectors: Vectors | None = None) -> str:
        meta = stamp_meta(self.name, table, meta)
        vid = self.store._write_locked(self.store._dir(self.name),
                                       lambda stage: write_version(stage, table, scores, meta, vectors))
        assert vid is not None  # only a conditional write can be skipped
        return vid
