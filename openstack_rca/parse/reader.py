"""Find log files under the paths an operator gives and read them safely.

Compression is detected by magic bytes, not by name (rotated files are ``.gz`` only sometimes), a truncated gzip
keeps what decompressed, and binary files are skipped and reported rather than parsed into garbage.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import mmap
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InputNotFound

_GZIP = b"\x1f\x8b"
_BZ2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_SKIP_NAMES = {"ground_truth.json"}
_MAP_MIN_BYTES = 1024 * 1024


@dataclass
class RawFile:
    """One input file's bytes after decompression, and what went wrong reading it."""

    path: str
    data: bytes | mmap.mmap
    digest: str | None
    """Hash of the file as stored on disk (before decompression): the cache key; None when not asked for."""
    compression: str | None = None
    warnings: list[str] = field(default_factory=list)
    binary: bool = False


def discover(paths: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand files and directories (recursively, sorted) into the files to read; missing paths raise."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise InputNotFound(f"path not found: {p}")
        if p.is_dir():
            out.extend(
                sorted(
                    f for f in p.rglob("*")
                    if f.is_file() and f.name not in _SKIP_NAMES and not any(part.startswith(".") for part in f.relative_to(p).parts)
                )
            )
        else:
            out.append(p)
    seen: set[Path] = set()
    unique = []
    for f in out:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique


def _gunzip(blob: bytes) -> tuple[bytes, bool]:
    """Decompress every gzip member; return (data, complete)."""
    chunks = []
    while blob:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            chunks.append(d.decompress(blob))
        except zlib.error:
            return b"".join(chunks), False
        if not d.eof:
            return b"".join(chunks), False
        blob = d.unused_data.lstrip(b"\x00")
        if blob and not blob.startswith(_GZIP):
            return b"".join(chunks), False
    return b"".join(chunks), True


def _stream_decompress(blob: bytes, make) -> tuple[bytes, bool]:
    d = make()
    try:
        data = d.decompress(blob)
    except (OSError, EOFError, lzma.LZMAError):
        return b"", False
    return data, d.eof


def looks_binary(data: bytes) -> bool:
    """NUL bytes or mostly non-text bytes in the first 8 KiB: not a log file."""
    head = data[:8192]
    if not head:
        return False
    if b"\x00" in head:
        return True
    text = sum(1 for b in head if b >= 32 or b in (9, 10, 13, 12, 27))
    return text / len(head) < 0.85


def _map(path: Path) -> bytes | mmap.mmap:
    """The file's bytes: memory-mapped when it is big, so the page cache is used in place instead of copied into
    fresh process memory (which costs more than parsing on VMs with slow page faults)."""
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < _MAP_MIN_BYTES:
            return fh.read()
        return mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)


def count_newlines(data: bytes | mmap.mmap, start: int = 0, end: int | None = None) -> int:
    """``data.count(b"\n", start, end)`` for bytes and mmaps alike."""
    end = len(data) if end is None else end
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    view = np.frombuffer(data, np.uint8, count=end - start, offset=start)
    step = 1 << 20  # a block at a time: one 60 MB temporary would cost more in page faults than the compare
    return sum(int(np.count_nonzero(view[i : i + step] == 10)) for i in range(0, len(view), step))


def read(path: Path, *, digest: bool = True) -> RawFile:
    blob = _map(path)
    raw = RawFile(path=str(path), data=blob,
                  digest=hashlib.blake2b(blob, digest_size=16).hexdigest() if digest else None)
    kind = None
    magic = bytes(blob[:6])
    if magic.startswith(_GZIP):
        kind, (data, ok) = "gzip", _gunzip(bytes(blob))
    elif magic.startswith(_BZ2):
        kind, (data, ok) = "bzip2", _stream_decompress(bytes(blob), bz2.BZ2Decompressor)
    elif magic.startswith(_XZ):
        kind, (data, ok) = "xz", _stream_decompress(bytes(blob), lzma.LZMADecompressor)
    if kind:
        raw.compression = kind
        raw.data = data
        if not ok:
            raw.warnings.append(f"{kind} stream is truncated or corrupt; kept the {len(data)} bytes that decompressed")
    if looks_binary(raw.data):
        raw.binary = True
    return raw
