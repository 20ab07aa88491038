"""Record timestamps as numbers, so the engine and the semantic index can order, window and plot them.

The parser keeps timestamps as written (ISO text). Here they become seconds since the epoch, in UTC:
a timestamp with an offset (``+00:00``, ``Z``, ``+0100``) is converted; one without is taken as UTC, which is what
OpenStack services log by default (oslo.log writes the host's clock and clouds run their hosts in UTC).
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc


def to_epoch(ts: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Seconds since the epoch (float64), NaN where the timestamp is missing or unreadable."""
    if len(ts) == 0:
        return np.zeros(0)
    ts = ts.combine_chunks() if isinstance(ts, pa.ChunkedArray) else ts
    text = pc.fill_null(ts, "")
    base = pc.utf8_slice_codeunits(text, 0, 19)
    base = pc.replace_substring(base, "T", " ", max_replacements=1)
    whole = pc.strptime(base, format="%Y-%m-%d %H:%M:%S", unit="s", error_is_null=True)
    secs = pc.cast(whole, pa.int64()).to_numpy(zero_copy_only=False).astype(float)
    secs[~pc.is_valid(whole).to_numpy(zero_copy_only=False)] = np.nan
    rest = pc.utf8_slice_codeunits(text, 19, 64)
    # fractional seconds: ".123456" right after the seconds
    frac = pc.extract_regex(rest, r"^[.,](?P<f>\d{1,9})")
    if frac.null_count < len(frac):
        f = pc.struct_field(frac, [0])
        digits = pc.utf8_length(f)
        val = pc.cast(pc.fill_null(f, "0"), pa.float64()).to_numpy(zero_copy_only=False)
        secs += np.nan_to_num(val / np.power(10.0, pc.fill_null(digits, 1).to_numpy(zero_copy_only=False)))
    # an explicit offset: subtract it to get UTC
    off = pc.extract_regex(rest, r"(?P<sign>[+-])(?P<h>\d\d):?(?P<m>\d\d)$")
    if off.null_count < len(off):
        sign = np.where(pc.fill_null(pc.struct_field(off, [0]), "+").to_numpy(zero_copy_only=False) == "-", -1.0, 1.0)
        h = pc.cast(pc.fill_null(pc.struct_field(off, [1]), "0"), pa.float64()).to_numpy(zero_copy_only=False)
        m = pc.cast(pc.fill_null(pc.struct_field(off, [2]), "0"), pa.float64()).to_numpy(zero_copy_only=False)
        secs -= sign * (h * 3600 + m * 60)
    return secs


def iso(epoch: float) -> str | None:
    """UTC ISO-8601 with milliseconds, the one format the report uses."""
    if epoch is None or not np.isfinite(epoch):
        return None
    return datetime.fromtimestamp(float(epoch), timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def template_occurrences(template_id: pa.Array | pa.ChunkedArray, epoch: np.ndarray) -> dict:
    """Per distinct template: its index per record (``code``), ``ids``, ``count``, the row of its earliest occurrence
    (by time, then file position; records without a time last), and its first and last time (NaN when none).

    The one grouping both the semantic index (a document per template) and the diagnosis (a cluster per
    template) are built on.
    """
    col = template_id.combine_chunks() if isinstance(template_id, pa.ChunkedArray) else template_id
    enc = pc.dictionary_encode(col)
    code = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    ids = enc.dictionary.to_pylist()
    k = len(ids)
    t = np.where(np.isfinite(epoch), epoch, np.inf)
    order = np.lexsort((np.arange(len(code)), t, code))
    first_row = order[np.searchsorted(code[order], np.arange(k))]
    last = np.full(k, -np.inf)
    ok = np.isfinite(epoch)
    np.maximum.at(last, code[ok], epoch[ok])
    return {"code": code, "ids": ids, "count": np.bincount(code, minlength=k), "first_row": first_row,
            "first_ts": epoch[first_row] if k else np.zeros(0), "last_ts": np.where(np.isfinite(last), last, np.nan)}
