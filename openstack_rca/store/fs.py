"""Filesystem primitives the local store is built on: a lock that works across worker processes, durable
atomic replacement, and disk-full errors that name the corpus instead of a server path."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import secrets
import time
from pathlib import Path
from typing import Iterator

from ..errors import RCAError, StorageFull, StoreBusy

FULL = {errno.ENOSPC, errno.EDQUOT}


@contextlib.contextmanager
def flock(path: Path, timeout_s: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path``; StoreBusy after ``timeout_s``. The kernel drops it when the
    holder dies, so a killed writer never leaves the corpus locked."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreBusy(f"{what} is being written by another request; retry shortly") from None
                time.sleep(0.02)
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # deleted (renamed away) while we waited: writing now would resurrect it half-way
            raise StoreBusy(f"{what} was deleted while this request waited; retry")
        yield
    finally:
        os.close(fd)  # releases the lock


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (a crash after it returns cannot undo the rename)."""
    fsync_file(path)


def replace_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically: a unique temp file, fsync, rename over the old one."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(path.parent)


def storage_error(exc: OSError, what: str) -> RCAError:
    """The error to raise for a failed write: StorageFull for a full disk or quota, else a plain RCAError;
    neither carries the server's path."""
    if exc.errno in FULL or any(m in str(exc) for m in ("No space left", "Disk quota exceeded")):
        return StorageFull(f"no space left to write {what}; the previous version is kept. Free disk space "
                           "under RCA_HOME (or raise the quota) and retry")
    return RCAError(f"could not write {what}: {exc.strerror or type(exc).__name__}")
