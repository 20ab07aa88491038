"""Parsed-record cache: one Parquet file per input content, so a second run over the same logs skips parsing.

Keyed by the file's content hash plus everything that changes the output (parser code version, the masking and
layout patterns, the line limit, the journald year): a changed parser never serves stale records. The source path
is not part of the key; a cached table is relabelled with the path it is read under.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import layouts, masking

PARSER_VERSION = "3"


def parser_fingerprint() -> str:
    """Changes whenever a pattern that shapes records changes."""
    h = hashlib.blake2b(digest_size=6)
    h.update(PARSER_VERSION.encode())
    h.update(masking.VARIABLE.pattern.encode())
    for lay in layouts.LAYOUTS:
        h.update(lay.regex.pattern.encode())
    h.update(layouts.CRI.pattern.encode())
    return h.hexdigest()


class ParsedCache:
    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self._fp = parser_fingerprint()

    def key(self, digest: str, max_line_bytes: int, year: int) -> str:
        return f"{digest}-{self._fp}-{max_line_bytes}-{year}"

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.parquet"

    def get(self, key: str, source: str) -> pa.Table | None:
        path = self._path(key)
        if not path.is_file():
            return None
        try:
            table = pq.read_table(path)
        except (OSError, pa.ArrowInvalid):
            path.unlink(missing_ok=True)  # a damaged entry is just a miss
            return None
        idx = table.schema.get_field_index("source")
        return table.set_column(idx, "source", pc.cast(pa.repeat(source, table.num_rows), pa.string())) if table.num_rows else table

    def put(self, key: str, table: pa.Table) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        try:
            pq.write_table(table, tmp, compression="zstd")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def info(self) -> dict:
        files = list(self.dir.rglob("*.parquet")) if self.dir.is_dir() else []
        return {"path": str(self.dir), "entries": len(files), "bytes": sum(f.stat().st_size for f in files)}

    def clear(self) -> int:
        n = len(list(self.dir.rglob("*.parquet"))) if self.dir.is_dir() else 0
        shutil.rmtree(self.dir, ignore_errors=True)
        return n
