"""``Parser.parse``: files and directories in, one record table and a full line accounting out.

Per file: read (decompress, detect binary), look up the cache, else detect the layout and plan jobs. Jobs from all
files go to a warm process pool when the input is large enough to pay for it (big files are cut into chunks at
record boundaries); results travel back as Arrow IPC buffers, so no per-record Python objects cross processes, and
each file's cache entry is written chunk by chunk as they arrive, while the workers parse on. Workers never import
pandas or Arrow's query engine: per-file template statistics are one group-by here, after the chunks are in.
Input is handled in batches of ``_BATCH_BYTES`` so memory stays bounded on a large log directory.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import tempfile
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import pyarrow as pa

from ..config import RCAConfig
from . import layouts as L
from . import reader, services
from .cache import Entry, ParsedCache
from .nopandas import keep_pandas_out
from .parser import ChunkResult, LineCounts, parse_bytes, template_stats
from .records import SCHEMA, empty_table
from .templates import TemplateStore

ProgressFn = Callable[[int, int], None]
"""``progress(done_bytes, total_bytes)``, called from the parsing thread."""

_SAMPLE_LINES = 50
_BATCH_BYTES = 256 * 1024 * 1024


@dataclass
class FileReport(LineCounts):
    path: str = ""
    status: str = "parsed"  # parsed | cached | empty | binary | unreadable
    bytes: int = 0
    records: int = 0
    compression: Optional[str] = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class ParseResult:
    table: pa.Table
    files: list[FileReport]
    seconds: float = 0.0
    new_templates: int = 0

    @property
    def totals(self) -> dict[str, int]:
        keys = ("lines", "records", "blank", "unparsed", "continuation", "truncated", "decode_errors", "bytes")
        out = {k: sum(getattr(f, k) for f in self.files) for k in keys}
        out["files"] = len(self.files)
        for status in ("parsed", "cached", "empty", "binary", "unreadable"):
            out[f"files_{status}"] = sum(1 for f in self.files if f.status == status)
        return out

    def summary(self) -> dict:
        return {
            "totals": self.totals,
            "seconds": round(self.seconds, 3),
            "new_templates": self.new_templates,
            "files": [asdict(f) for f in self.files],
        }


_SHM = Path("/dev/shm") if Path("/dev/shm").is_dir() and os.access("/dev/shm", os.W_OK) else None


def _chunk_job(args: tuple) -> tuple[str, ChunkResult]:
    """Worker: parse one byte range of a file; write the table as an Arrow IPC file in shared memory.

    The parent memory-maps that file instead of receiving the table through a pipe: no pickling, no copy, and no
    fresh pages for the parent to fault in (which costs more than the parsing on some VMs).
    """
    table, res = _run_local(args)
    fd, path = tempfile.mkstemp(prefix="rca-chunk-", suffix=".arrow", dir=_SHM)
    with os.fdopen(fd, "wb") as fh, pa.ipc.new_file(fh, table.schema) as writer:
        writer.write_table(table)
    return path, res


def _read_chunk(path: str) -> pa.Table:
    try:
        return pa.ipc.open_file(pa.memory_map(path)).read_all()
    finally:
        os.unlink(path)  # the mapping stays valid; the name goes now so nothing leaks on a crash later


def _chunk_bytes(piece: bytes | tuple[str, int, int]) -> bytes:
    if isinstance(piece, bytes):
        return piece
    path, offset, length = piece
    with open(path, "rb") as fh:
        fh.seek(offset)
        return fh.read(length)


def _run_local(job: tuple) -> tuple[pa.Table, ChunkResult]:
    """Parse one job in this process: the table, and the accounting without it (so it pickles small)."""
    data, source, layout_names, is_cri, year, first_line, max_line, path_service = job
    data = _chunk_bytes(data)
    res = parse_bytes(
        data, source, tuple(L.BY_NAME[n] for n in layout_names), is_cri=is_cri, year=year,
        first_line_no=first_line, max_line_bytes=max_line, path_service=path_service,
    )
    table, res.table = res.table, None
    return table, res


def _header_key(line: bytes, layout: L.Layout, is_cri: bool):
    """``(ts, pid, component, message)`` of a line in the file's main layout, or None."""
    text = line.decode("utf-8", "replace").rstrip("\r")
    if is_cri:
        m = L.CRI.match(text)
        if m is None or m.group(3) == "P":
            return None
        text = m.group(4)
    m = layout.regex.match(text)
    if m is None:
        return None
    ts = layout.fix(m, 1970) if layout.fix else m.group("ts")  # journald stamps live in other groups
    return ts, m.group("pid"), m.group("comp"), m.group("msg")


def _is_record_start(prev: bytes, line: bytes, layout: L.Layout, is_cri: bool) -> bool:
    """A line that starts a record whatever came before it: a header whose (ts, pid, component) differs from the
    previous line's (oslo repeats one header on every line of a traceback) and not a traceback line itself."""
    key = _header_key(line, layout, is_cri)
    if key is None:
        return False
    msg = key[3]
    if msg.startswith("[instance: "):
        msg = msg[msg.find("] ") + 2 :]
    if msg[:1].isspace() or msg.startswith(("Traceback", "During handling", "The above exception")):
        return False
    prev_key = _header_key(prev, layout, is_cri)
    return prev_key is None or prev_key[:3] != key[:3]


def _split_points(data: bytes, parts: int, layout: L.Layout, is_cri: bool) -> list[int]:
    """Byte offsets that cut ``data`` into ~equal pieces, each starting a new record (never mid-traceback)."""
    cuts = [0]
    step = len(data) // parts
    for i in range(1, parts):
        pos = data.find(b"\n", max(cuts[-1], i * step))
        tries = 0
        while pos >= 0 and tries < 10_000:
            nxt = data.find(b"\n", pos + 1)
            prev = data[data.rfind(b"\n", 0, pos) + 1 : pos]
            if _is_record_start(prev, data[pos + 1 : nxt if nxt >= 0 else len(data)], layout, is_cri):
                break
            pos, tries = nxt, tries + 1
        if pos < 0 or tries >= 10_000 or pos + 1 >= len(data):
            break
        cuts.append(pos + 1)
    cuts.append(len(data))
    return sorted(set(cuts))


_POOL: cf.ProcessPoolExecutor | None = None
_POOL_SIZE = 0


def _pool(workers: int) -> cf.ProcessPoolExecutor:
    """One worker pool per process, kept warm between calls: a service parses again and again, and fresh
    workers pay for forking and for first-touching their memory on every call."""
    global _POOL, _POOL_SIZE
    if _POOL is None or _POOL_SIZE != workers:
        if _POOL is not None:
            _POOL.shutdown(cancel_futures=True)
        _POOL = cf.ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("fork"),
                                       initializer=keep_pandas_out)
        _POOL_SIZE = workers
    return _POOL


@dataclass
class _Pending:
    """A file read and planned, waiting for its jobs' results."""

    report: FileReport
    size: int = 0
    jobs: list[tuple] = field(default_factory=list)
    cache_key: Optional[str] = None
    table: Optional[pa.Table] = None
    templates: dict[str, tuple] = field(default_factory=dict)


class Parser:
    """Parses paths with one config; holds the template store and cache it was given."""

    def __init__(self, config: RCAConfig, *, store: TemplateStore | None = None, use_cache: bool | None = None):
        self.config = config
        self.store = store if store is not None else TemplateStore(config.templates_path)
        enabled = config.cache.enabled if use_cache is None else use_cache
        self.cache = ParsedCache(config.parsed_cache_dir) if enabled else None
        self.workers = max(1, config.parse.workers or os.cpu_count() or 1)
        self.limits = reader.Limits.of(config.parse)

    def parse(self, paths: Iterable[str | os.PathLike[str]], progress: ProgressFn | None = None, *,
              members: Sequence[reader.RawFile] = ()) -> ParseResult:
        """Parse files and directories, then ``members``: files already in memory (pod logs read through the
        Kubernetes API, ``sources.k8s``), planned exactly as archive members are."""
        t0 = time.perf_counter()
        files = reader.discover(paths)
        sizes = [_size(f) for f in files]
        total, done = sum(sizes) + sum(len(m.data) for m in members), 0
        tables: list[pa.Table] = []
        reports: list[FileReport] = []
        learned: dict[str, tuple] = {}
        batch: list[_Pending] = []
        batch_bytes = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if progress:
                progress(done, total)

        def flush() -> None:
            nonlocal batch_bytes
            for pending in self._finish(batch, advance):
                reports.append(pending.report)
                if pending.table is not None and pending.table.num_rows:
                    tables.append(pending.table)
                for tid, stats in pending.templates.items():
                    learned[tid] = _merge(learned.get(tid), stats)
            batch.clear()
            batch_bytes = 0

        def add(pending: _Pending) -> None:
            nonlocal batch_bytes
            batch.append(pending)
            batch_bytes += pending.report.bytes
            if batch_bytes >= _BATCH_BYTES:
                flush()

        for f, size in zip(files, sizes):
            if reader.archive_kind(f):  # read member by member, like a directory (progress moves per archive)
                for raw in reader.read_archive(f, digest=self.cache is not None, limits=self.limits):
                    add(self._plan_raw(raw, f))
                advance(size)
                continue
            pending = self._plan(f)
            pending.size = size
            add(pending)
        for raw in members:
            pending = self._plan_raw(raw, None)
            pending.size = len(raw.data)
            add(pending)
        flush()
        new = 0
        if self.config.parse.learn_templates and learned:
            new = self.store.learn(learned)
            self.store.save()
        table = pa.concat_tables(tables) if tables else empty_table()
        return ParseResult(table=table, files=reports, seconds=time.perf_counter() - t0, new_templates=new)

    # -- planning: read, cache lookup, chunking ----------------------------------------------------------------
    def _plan(self, path: Path) -> _Pending:
        try:
            raw = reader.read(path, digest=self.cache is not None, limits=self.limits)
        except OSError as exc:
            return _Pending(FileReport(path=str(path), status="unreadable",
                                       warnings=[f"cannot read: {exc.strerror or exc}"]))
        return self._plan_raw(raw, path)

    def _plan_raw(self, raw: reader.RawFile, path: Path | None) -> _Pending:
        """Plan one file's (or archive member's) bytes; ``path`` is the file on disk (its year), None for bytes
        that were never on this machine's disk (this year)."""
        source = raw.path
        if raw.error:
            return _Pending(FileReport(path=source, status="unreadable", warnings=list(raw.warnings) + [raw.error]))
        report = FileReport(path=source, status="parsed", bytes=len(raw.data), compression=raw.compression,
                            warnings=list(raw.warnings))
        pending = _Pending(report)
        if raw.binary:
            report.status = "binary"
            report.warnings.append("binary file skipped (not a text log)")
            return pending
        if not raw.data:
            report.status = "empty"
            return pending
        year = self.config.parse.journal_year or (
            datetime.fromtimestamp(path.stat().st_mtime) if path is not None else datetime.now()).year
        max_line = self.config.parse.max_line_bytes
        if self.cache is not None:
            pending.cache_key = self.cache.key(raw.digest, max_line, year)
            hit = self.cache.get(pending.cache_key, source)
            if hit is not None and set(_COUNT_FIELDS) <= hit[1].keys():
                pending.table, counts = hit
                _account_cached(report, pending.table, counts)
                return pending
        head = raw.data[: 256 * 1024].decode("utf-8", "replace").split("\n")[:_SAMPLE_LINES]
        is_cri, order = L.detect(head)
        names = tuple(lay.name for lay in order)
        path_service = services.from_path(source)
        data = raw.data
        parts = max(1, len(data) // self.config.parse.chunk_bytes)
        cuts = _split_points(data, parts, order[0], is_cri) if parts > 1 else [0, len(data)]
        line0 = 1
        for a, b in zip(cuts, cuts[1:]):
            # Uncompressed chunks travel as (path, offset, length): workers read them from the page cache
            # themselves instead of receiving a pickled copy through a pipe.
            piece = (source, a, b - a) if raw.compression is None and not raw.member else data[a:b]
            pending.jobs.append((piece, source, names, is_cri, year, line0, max_line, path_service))
            line0 += reader.count_newlines(data, a, b)
        return pending

    # -- running and assembling ----------------------------------------------------------------------------
    def _finish(self, batch: list[_Pending], advance: Callable[[int], None]):
        """Run the batch's jobs (in the pool when big enough), yielding each file once its chunks are in.

        ``advance(n)`` is told the on-disk bytes done after every chunk, so a progress bar moves within big files.
        """
        jobs = [job for p in batch for job in p.jobs]
        job_bytes = sum(_job_len(job) for job in jobs)
        if len(jobs) > 1 and self.workers > 1 and job_bytes >= self.config.parse.parallel_min_bytes:
            results = iter((_read_chunk(path), st) for path, st in _pool(self.workers).map(_chunk_job, jobs))
        else:
            results = (_run_local(job) for job in jobs)
        for pending in batch:
            if pending.jobs:
                # the cache entry is written chunk by chunk as chunks come back, overlapping the workers' parsing
                with self.cache.entry(pending.cache_key, SCHEMA) if pending.cache_key else nullcontext() as entry:
                    parts, done = [], 0
                    for job in pending.jobs:
                        part = next(results)
                        parts.append(part)
                        if entry is not None:
                            entry.write(part[0])
                        step = pending.size * _job_len(job) // max(pending.report.bytes, 1)
                        advance(step)
                        done += step
                    self._assemble(pending, parts, entry)
                advance(pending.size - done)
            else:
                advance(pending.size)
            yield pending

    def _assemble(self, pending: _Pending, parts: list[tuple[pa.Table, ChunkResult]], entry: Entry | None) -> None:
        report = pending.report
        tables = [t for t, _ in parts]
        table = pa.concat_tables(tables) if len(tables) > 1 else tables[0]
        for _, chunk in parts:
            report.add(chunk)
        report.records = table.num_rows
        pending.templates = template_stats(table) if self.config.parse.learn_templates else {}
        max_line = self.config.parse.max_line_bytes
        if report.unparsed and report.unparsed == report.records:
            report.warnings.append("no known log layout recognised; every line kept as an unparsed record")
        if report.decode_errors:
            report.warnings.append(f"{report.decode_errors} line(s) had invalid UTF-8; bytes replaced with U+FFFD")
        if report.truncated:
            report.warnings.append(f"{report.truncated} line(s) longer than {max_line} bytes truncated")
        if entry is not None and table.num_rows:
            entry.commit(_counts_of(report))
        pending.table = table
        pending.jobs = []


def _job_len(job: tuple) -> int:
    piece = job[0]
    return piece[2] if isinstance(piece, tuple) else len(piece)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _merge(a: Optional[tuple], b: tuple) -> tuple:
    """Combine two ``(template, count, first_ts, last_ts)`` entries for one template id."""
    if a is None:
        return b
    firsts = [x for x in (a[2], b[2]) if x]
    lasts = [x for x in (a[3], b[3]) if x]
    return a[0], a[1] + b[1], min(firsts) if firsts else None, max(lasts) if lasts else None


_COUNT_FIELDS = tuple(f.name for f in fields(LineCounts))


def _counts_of(report: FileReport) -> dict:
    return {name: getattr(report, name) for name in _COUNT_FIELDS}


def _account_cached(report: FileReport, table: pa.Table, counts: dict) -> None:
    """A cache hit's line accounting: stored with the entry, so nothing is counted again."""
    report.status = "cached"
    report.records = table.num_rows
    for name in _COUNT_FIELDS:
        setattr(report, name, counts[name])


def parse_paths(paths, config: RCAConfig, *, progress: ProgressFn | None = None,
                use_cache: bool | None = None) -> ParseResult:
    """Parse files/directories with ``config``; see :class:`Parser`."""
    return Parser(config, use_cache=use_cache).parse(paths, progress)
