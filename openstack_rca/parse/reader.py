"""Find log files under the paths an operator gives and read them safely.

Compression is detected by magic bytes, not by name (rotated files are ``.gz`` only sometimes), a truncated gzip
keeps what decompressed, and binary files are skipped and reported rather than parsed into garbage.

Archives (``.tar``, ``.tar.gz``/``.tgz``/``.tar.bz2``/``.tar.xz``, ``.zip``: sosreports, kolla log bundles) are
read member by member, in memory: nothing is ever extracted to disk, so a member named ``/etc/passwd`` or
``../../x`` can name nothing but itself. A member is labelled ``<archive>!/<member path>`` (absolute and ``..``
parts dropped), so its folders and file name name the service as they would on disk. Whatever decompresses (a
compressed file, an archive, a compressed member inside one) counts against one budget per input file
(``Limits``): past it the input is refused with ``UntrustedInput`` as a possible decompression bomb.
"""

from __future__ import annotations

import bz2
import hashlib
import lzma
import mmap
import os
import tarfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, Iterable, Iterator

import numpy as np

from ..errors import InputNotFound, UntrustedInput

_GZIP = b"\x1f\x8b"
_BZ2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_SKIP_NAMES = {"ground_truth.json"}
_MAP_MIN_BYTES = 1024 * 1024
_STEP = 1024 * 1024  # decompress at most this much at a time, so a bomb is caught before it fills memory
_RATIO_FROM = 16 * 1024 * 1024  # the ratio is judged once this much came out (tiny archives pad to 10 KiB)


@dataclass(frozen=True)
class Limits:
    """How much a compressed file or an archive may decompress to (``ParseConfig`` holds the settings)."""

    max_bytes: int = 2 * 1024**3
    max_ratio: float = 200.0

    @classmethod
    def of(cls, parse_config) -> "Limits":
        return cls(parse_config.max_uncompressed_bytes, float(parse_config.max_compression_ratio))


class _Budget:
    """Bytes decompressed out of one input file, against its size on disk."""

    def __init__(self, limits: Limits | None, stored: int, what: str):
        self.limits, self.stored, self.what, self.total = limits, max(stored, 1), what, 0

    def add(self, n: int) -> None:
        self.total += n
        lim = self.limits
        if lim is None:
            return
        if self.total > lim.max_bytes:
            raise UntrustedInput(
                f"{self.what}: decompresses to more than {lim.max_bytes:,} bytes; refused as a possible "
                "decompression bomb (raise parse.max_uncompressed_bytes if it is a genuine log bundle)")
        if self.total > _RATIO_FROM and self.total > lim.max_ratio * self.stored:
            raise UntrustedInput(
                f"{self.what}: {self.stored:,} bytes on disk decompress to more than {lim.max_ratio:g} times "
                "that; refused as a possible decompression bomb (logs compress 5-30x; raise "
                "parse.max_compression_ratio if it is a genuine log bundle)")


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
    member: bool = False
    """A member of an archive: its bytes live only in memory (never re-read from ``path``)."""
    error: str | None = None
    """Why the bytes could not be read (a corrupt archive); the file is reported unreadable."""


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


def _gunzip(blob: bytes, budget: _Budget | None = None) -> tuple[bytes, bool]:
    """Decompress every gzip member; return (data, complete)."""
    chunks = []
    while blob:
        d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        buf = blob
        try:
            while not d.eof:
                out = d.decompress(buf, _STEP)
                if budget is not None:
                    budget.add(len(out))
                chunks.append(out)
                buf = d.unconsumed_tail
                if not buf and len(out) < _STEP:
                    break
        except zlib.error:
            return b"".join(chunks), False
        if not d.eof:
            return b"".join(chunks), False
        blob = d.unused_data.lstrip(b"\x00")
        if blob and not blob.startswith(_GZIP):
            return b"".join(chunks), False
    return b"".join(chunks), True


def _stream_decompress(blob: bytes, make, budget: _Budget | None = None) -> tuple[bytes, bool]:
    d = make()
    chunks = []
    buf = blob
    try:
        while not d.eof:
            out = d.decompress(buf, _STEP)
            buf = b""
            if budget is not None:
                budget.add(len(out))
            chunks.append(out)
            if d.needs_input:
                break
    except (OSError, EOFError, lzma.LZMAError):
        return b"".join(chunks), False
    return b"".join(chunks), d.eof


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


def read(path: Path, *, digest: bool = True, limits: Limits | None = None) -> RawFile:
    """One file's bytes, decompressed; past ``limits`` (None: no limit) it raises ``UntrustedInput``."""
    blob = _map(path)
    raw = RawFile(path=str(path), data=blob,
                  digest=hashlib.blake2b(blob, digest_size=16).hexdigest() if digest else None)
    return _decode(raw, _Budget(limits, len(blob), str(path)))


def _decode(raw: RawFile, budget: _Budget) -> RawFile:
    """Decompress ``raw.data`` in place when its magic bytes say so, and judge whether it is text."""
    blob = raw.data
    kind = None
    magic = bytes(blob[:6])
    if magic.startswith(_GZIP):
        kind, (data, ok) = "gzip", _gunzip(bytes(blob), budget)
    elif magic.startswith(_BZ2):
        kind, (data, ok) = "bzip2", _stream_decompress(bytes(blob), bz2.BZ2Decompressor, budget)
    elif magic.startswith(_XZ):
        kind, (data, ok) = "xz", _stream_decompress(bytes(blob), lzma.LZMADecompressor, budget)
    if kind:
        raw.compression = kind
        raw.data = data
        if not ok:
            raw.warnings.append(f"{kind} stream is truncated or corrupt; kept the {len(data)} bytes that decompressed")
    if looks_binary(raw.data):
        raw.binary = True
    return raw


# -- archives -----------------------------------------------------------------------------------------------------
_ZIP = (b"PK\x03\x04", b"PK\x05\x06")


def archive_kind(path: Path) -> str | None:
    """"zip" or "tar" (any compression tarfile reads) when ``path`` is an archive, else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head in _ZIP:
            return "zip"
        if not tarfile.is_tarfile(path):
            return None
        with tarfile.open(path, "r:*") as tf:  # blocks of zeros pass is_tarfile: a tar has a member
            return "tar" if tf.next() is not None else None
    except (OSError, EOFError, tarfile.TarError, zlib.error, lzma.LZMAError):
        return None


def member_label(archive: str, name: str) -> tuple[str, bool]:
    """``(<archive>!/<member path>, safe)``: the label a member's records carry, with absolute, ``.`` and ``..``
    parts dropped; ``safe`` is False when there were any (the name tried to leave the archive's root)."""
    norm = name.replace("\\", "/")
    parts = PurePosixPath(norm).parts
    keep = [p for p in parts if p not in ("/", ".", "..", "") and not (len(p) == 2 and p[1] == ":")]
    safe = not norm.startswith("/") and ".." not in parts and not (len(norm) > 1 and norm[1] == ":")
    return f"{archive}!/{'/'.join(keep)}", safe


def _read_bounded(fh: IO[bytes], budget: _Budget) -> bytes:
    chunks = []
    while True:
        block = fh.read(_STEP)
        if not block:
            return b"".join(chunks)
        budget.add(len(block))
        chunks.append(block)


def _members(path: Path, kind: str) -> Iterator[tuple[str, IO[bytes] | None, int]]:
    """``(name, stream, declared size)`` of each regular file, in archive order; never touches the disk."""
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir():
                    continue
                with zf.open(info) as fh:
                    yield info.filename, fh, info.file_size
        return
    with tarfile.open(path, "r:*") as tf:
        for m in tf:  # streaming: a compressed tar is decompressed once, front to back
            if m.isfile():
                yield m.name, tf.extractfile(m), m.size


def read_archive(path: Path, *, digest: bool = True, limits: Limits | None = None) -> Iterator[RawFile]:
    """Each member of an archive as a ``RawFile`` labelled ``<archive>!/<member>``, read in memory only.

    Members that are hidden (a ``.``-folder) or the simulator's ``ground_truth.json`` are skipped, as in a
    directory; links, devices and folders are not files and are skipped too. A member that decompresses (gzip,
    bzip2, xz) is decompressed. All of it counts against one budget: past ``limits`` it raises
    ``UntrustedInput``. A corrupt or truncated archive ends with an unreadable entry saying where it broke."""
    kind = archive_kind(path)
    if kind is None:
        raise UntrustedInput(f"{path}: not a tar or zip archive")
    budget = _Budget(limits, path.stat().st_size, str(path))
    count = 0
    try:
        for name, fh, size in _members(path, kind):
            label, safe = member_label(str(path), name)
            parts = label.split("!/", 1)[1].split("/")
            if not parts[-1] or parts[-1] in _SKIP_NAMES or any(p.startswith(".") for p in parts):
                continue
            if limits is not None and budget.total + size > limits.max_bytes:
                budget.add(size)  # declared bigger than the budget: refused before reading a byte
            blob = _read_bounded(fh, budget) if fh is not None else b""
            count += 1
            raw = RawFile(path=label, data=blob, member=True,
                          digest=hashlib.blake2b(blob, digest_size=16).hexdigest() if digest else None)
            if not safe:
                raw.warnings.append(f"archive member {name!r} names a path outside the archive; read in memory "
                                    "only, labelled without its absolute or '..' parts")
            yield _decode(raw, budget)
    except (tarfile.TarError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, lzma.LZMAError,
            NotImplementedError, RuntimeError) as exc:  # RuntimeError: an encrypted zip member
        yield RawFile(path=str(path), data=b"", digest=None,
                      error=f"archive is corrupt or truncated after {count} member(s): {exc}")
