"""Records as JSON lines straight from the Arrow columns: what ``rca parse --json`` writes.

Byte for byte what ``json.dumps(record.to_dict(), ensure_ascii=False)`` gives for each record (a test holds the two
together), without building a dict or Record per record: each column is rendered to JSON text at once (the C
extension's ``json_strings``, else Arrow kernels) and one element-wise join makes the lines, whose bytes go to the
output as they lie in the Arrow buffer. Only ``params``, derived from the message by the masker, is made per record.
"""

from __future__ import annotations

import json
from dataclasses import fields
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc

from .masking import mask
from .records import SCHEMA, Record

try:
    from ._speedups import json_strings as _c_json_strings
    from ._speedups import params_json as _c_params_json
except ImportError:  # no compiler at install time: Arrow kernels escape, json.dumps writes params
    _c_json_strings = _c_params_json = None

# json.dumps's escapes for the characters it must escape; backslash first so later escapes are not doubled
_SHORT = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"), ("\b", "\\b"), ("\f", "\\f"))
_MUST_ESCAPE = r'[\x00-\x1f"\\]'
_CONTROL = r"[\x00-\x1f]"  # left after the short escapes: written \u00XX, rare enough to do one by one

if [f.name for f in fields(Record)] != SCHEMA.names:
    raise RuntimeError("Record's fields and SCHEMA's columns differ; --json follows Record.to_dict's order")
_KEYS = [*SCHEMA.names, "params"]


def write_jsonl(table: pa.Table, out: BinaryIO, *, rows_per_batch: int = 16384, fast: bool = True) -> int:
    """Write one JSON object per record to ``out`` (a binary stream); return the records written.

    ``fast=False`` leaves the C helpers out (tests hold the two paths to the same bytes).
    """
    for batch in _batches(table, rows_per_batch):
        _write(batch, out, fast)
    return table.num_rows


def _batches(table: pa.Table, rows: int):
    """Batches of at most ``rows``: the table's own chunks as they are (no copy), runs of small ones (a table of
    many small files) merged, since every batch costs the same few dozen kernel calls."""
    pending: list[pa.RecordBatch] = []
    count = 0
    for batch in table.to_batches(max_chunksize=rows):
        if count + len(batch) > rows and pending:
            yield pa.concat_batches(pending)
            pending, count = [], 0
        pending.append(batch)
        count += len(batch)
        if count >= rows // 4:
            yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)
            pending, count = [], 0
    if pending:
        yield pending[0] if len(pending) == 1 else pa.concat_batches(pending)


def _write(batch: pa.RecordBatch, out: BinaryIO, fast: bool) -> None:
    try:
        lines = _lines(batch, fast)
    except (OverflowError, pa.ArrowException):
        if len(batch) < 2:
            raise
        half = len(batch) // 2  # over 2 GiB of JSON in one batch (huge joined tracebacks): write it in halves
        _write(batch.slice(0, half), out, fast)
        _write(batch.slice(half), out, fast)
        return
    out.write(_data(lines))


def _lines(batch: pa.RecordBatch, fast: bool) -> pa.Array:
    pieces: list = []
    for i, key in enumerate(_KEYS):
        pieces.append(("{" if i == 0 else ", ") + f'"{key}": ')
        pieces.append(_params(batch.column("message"), fast) if key == "params" else _render(batch.column(key), fast))
    pieces.append("}\n")
    return pc.binary_join_element_wise(*pieces, "")


def _render(col: pa.Array, fast: bool) -> pa.Array:
    """Each value as JSON text: quoted and escaped strings, ints, true/false, null."""
    if pa.types.is_string(col.type):
        text = _quoted(col, fast)
    else:
        text = pc.cast(col, pa.string())  # int32 and bool render as JSON does
    return pc.if_else(pc.is_valid(col), text, "null") if col.null_count else text


def _quoted(col: pa.Array, fast: bool) -> pa.Array:
    if fast and _c_json_strings is not None and len(col):
        _validity, offsets, data = col.buffers()
        offs, body = _c_json_strings(offsets, data if data is not None else b"", col.offset, len(col))
        return pa.Array.from_buffers(pa.string(), len(col), [None, pa.py_buffer(offs), pa.py_buffer(body)])
    return pc.binary_join_element_wise('"', _escape(col), '"', "")


def _escape(col: pa.Array) -> pa.Array:
    """String bodies as json.dumps escapes them (ensure_ascii=False): only the rows that need it are touched."""
    need = pc.fill_null(pc.match_substring_regex(col, _MUST_ESCAPE), False)
    if not pc.any(need).as_py():
        return col
    original = pc.filter(col, need)
    sub = original
    for a, b in _SHORT:
        sub = pc.replace_substring(sub, a, b)
    odd = pc.match_substring_regex(sub, _CONTROL)
    if pc.any(odd).as_py():
        values = sub.to_pylist()
        for i in pc.indices_nonzero(odd).to_pylist():
            values[i] = json.dumps(original[i].as_py(), ensure_ascii=False)[1:-1]
        sub = pa.array(values, pa.string())
    return pc.replace_with_mask(col, need, sub)


def _params(messages: pa.Array, fast: bool) -> pa.Array:
    """``Record.params`` as JSON: the masker's variables of each message."""
    c = _c_params_json if fast else None
    if c is None:
        return pa.array([_params_slow(m) for m in messages.to_pylist()], pa.string())
    return pa.array([c(m) or _params_slow(m) for m in messages.to_pylist()], pa.string())


def _params_slow(message: str) -> str:
    return json.dumps(mask(message)[1], ensure_ascii=False)


def _data(lines: pa.Array) -> memoryview:
    """The UTF-8 bytes of a string array's values, end to end, without copying them."""
    _validity, offsets, data = lines.buffers()
    off = memoryview(offsets).cast("i")
    return memoryview(data)[off[lines.offset] : off[lines.offset + len(lines)]]
