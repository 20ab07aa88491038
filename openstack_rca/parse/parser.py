"""Bytes of one file (or one chunk of it) -> a record table.

This is the hot path, written for throughput. With the C extension, plain oslo lines (nearly every OpenStack line)
are taken by ``RowBuilder.scan`` in runs, straight into Arrow column buffers; this module's loop decides only the
rest (tracebacks and other continuations, other layouts, non-ASCII, blank, over-long or CRI lines) and hands each
such record to the same builder. Without the extension the loop does every line the same way (one header regex,
one masking pass), one tuple per record. Everything that can be done per column is done once at the end by Arrow:
timestamp and level normalisation, pid casts, template ids, splitting the oslo context into request/user/project
ids, services per distinct (origin, logger).
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from . import services
from .layouts import CRI, DEFAULT_COMPONENT, FIELDS, Layout, c_parse_oslo, level_of
from .masking import WILDCARD, VARIABLE, c_template_of, template_of
from .records import SCHEMA
from .templates import template_id

try:
    from ._speedups import RowBuilder
except ImportError:  # no compiler at install time: rows are tuples in a list
    RowBuilder = None

_INSTANCE = "[instance: "
_TRACEBACK = "Traceback (most recent call last)"
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_LAYOUT_SERVICE = {"rabbitmq": "rabbitmq", "mysql": "mysql", "libvirt": "libvirtd"}


@dataclass
class LineCounts:
    """Where every input line went; parsed chunks and file reports both carry it, and they add up."""

    lines: int = 0
    blank: int = 0
    unparsed: int = 0
    continuation: int = 0
    truncated: int = 0
    decode_errors: int = 0
    layouts: dict[str, int] = field(default_factory=dict)

    def add(self, other: "LineCounts") -> None:
        for name in ("lines", "blank", "unparsed", "continuation", "truncated", "decode_errors"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for name, n in other.layouts.items():
            self.layouts[name] = self.layouts.get(name, 0) + n


@dataclass
class ChunkResult(LineCounts):
    """A parsed chunk: the accounting that proves no line was lost, and the table."""

    table: Optional[pa.Table] = None


def decode(data: bytes) -> tuple[list[str], frozenset[int]]:
    """Split bytes on ``\\n`` into lines; undecodable bytes are replaced and those line indexes returned."""
    try:
        lines = data.decode("utf-8").split("\n")
        bad: frozenset[int] = frozenset()
    except UnicodeDecodeError:
        lines, bad_set = [], set()
        for i, chunk in enumerate(data.split(b"\n")):
            try:
                lines.append(chunk.decode("utf-8"))
            except UnicodeDecodeError:
                lines.append(chunk.decode("utf-8", "replace"))
                bad_set.add(i)
        bad = frozenset(bad_set)
    if lines and lines[-1] == "":
        lines.pop()
    return lines, bad


def _instance(msg: str) -> Optional[str]:
    i = msg.find(_INSTANCE)
    if i < 0:
        return None
    j = msg.find("]", i)
    return msg[i + len(_INSTANCE) : j] if j > 0 else None


def _body(text: str) -> str:
    """A traceback line's text without kubelet's CRI wrapper, a repeated oslo header or ``[instance: …]`` prefix."""
    if text[:4].isdigit() and (m := CRI.match(text)) is not None:
        text = m.group(4)
    for marker in ("ERROR ", "TRACE ", "CRITICAL "):
        # after the timestamp and pid, or first on the line (message-only layouts start with the level)
        k = 0 if text.startswith(marker) else text.find(" " + marker) + 1
        if 0 < k <= 60 or text.startswith(marker):
            rest = text[k + len(marker) :]
            sp = rest.find(" ")
            text = rest[sp + 1 :] if sp >= 0 else ""
            break
    if text.startswith("[") and "] " in text[:60]:
        text = text[text.find("] ") + 2 :]
    return text


def exception_line(raw: str) -> Optional[str]:
    """The ``SomeError: text`` line that ends the last traceback in a joined record, header stripped.

    The first unindented line after a traceback's frames; what follows it (a multi-line exception message, or
    more of the record's text) is not the exception.
    """
    seen_tb = False
    last = None
    for line in raw.split("\n")[1:]:
        body = _body(line)
        if body.startswith(_TRACEBACK):
            seen_tb, last = True, None
            continue
        if seen_tb and last is None and body and not body[0].isspace() and not body.startswith(_CHAINED):
            last = body
    return last


def parse_bytes(
    data: bytes,
    source: str,
    layouts: tuple[Layout, ...],
    *,
    is_cri: bool = False,
    year: int = 1970,
    first_line_no: int = 1,
    max_line_bytes: int = 65536,
    path_service: Optional[str] = None,
    fast: bool = True,
) -> ChunkResult:
    """Parse the bytes of one file, or of one chunk of it that starts at a record boundary.

    ``fast=False`` leaves the C row builder out (tests hold the two paths to the same table).
    """
    lines, bad_lines = decode(data)
    # one row per record: (line_no, ts, pid, level, comp, origin, ctx, inst, msg, template, layout, raw)
    rows = RowBuilder() if fast and RowBuilder is not None else []
    append = rows.append
    ext: dict[int, list] = {}  # row -> [last line no, extra raw lines, truncated, decode_error]
    flags: dict[int, tuple[int, bool, bool]] = {}  # row -> (last line, truncated, decode error), rare rows only

    primary = layouts[0]
    p_match = primary.regex.match
    p_name = primary.name
    p_fix = primary.fix
    p_idx = None if primary.canonical else tuple(primary.regex.groupindex[n] for n in FIELDS)
    others = [(lay, None if lay.canonical else tuple(lay.regex.groupindex[n] for n in FIELDS)) for lay in layouts[1:]]
    regex_sub = VARIABLE.sub
    W = WILDCARD
    c_tpl = c_template_of
    # the C header parser covers the oslo layouts, which are nearly every OpenStack line
    c_header = c_parse_oslo if p_name in ("oslo", "oslo_prefixed") else None
    c_prefixed = p_name == "oslo_prefixed"
    has_cr = b"\r" in data
    max_chars = max_line_bytes // 4  # below this many chars a line cannot exceed the byte limit
    # runs of plain oslo lines go to C whole; its preconditions on the loop's state are checked at each call
    scan = rows.scan if not isinstance(rows, list) and c_header is not None and not is_cri and not bad_lines else None

    prev_ts = prev_pid = prev_comp = None
    in_tb = ""  # "" outside a traceback; "header": oslo repeats the header on each line; "bare": no headers
    last_parsed = False  # the newest record has a header: a header-less line after it continues its message
    pending_blank: list[tuple[int, str]] = []  # blank lines that join a record if a continuation follows them
    partial: list[str] = []
    partial_start = 0
    blank = unparsed = continuation = truncated = 0

    def base_raw(idx: int) -> str:
        return lines[idx].rstrip("\r") if has_cr else lines[idx]

    def mark(ln: int, trunc: bool, bad: bool) -> None:
        """The next row is not simply its one input line: it ends later, or was cut or repaired."""
        flags[len(rows)] = (ln, trunc, bad)

    def attach(line: str, ln: int, trunc: bool, bad: bool) -> None:
        """Continuation lines always belong to the newest record."""
        cur = len(rows) - 1
        e = ext.get(cur)
        if e is None:
            e = ext[cur] = [ln, [], False, False]
        e[0] = ln
        e[1].append(line)
        e[2] = e[2] or trunc
        e[3] = e[3] or bad

    n_lines = len(lines)
    gc_was = gc.isenabled()
    gc.disable()  # hundreds of thousands of short-lived strings; the cyclic GC only slows this loop down
    try:
        idx = -1
        while True:
            idx += 1
            if scan is not None and not in_tb and not pending_blank and idx < n_lines:
                prev = (prev_ts, prev_pid, prev_comp)
                stop, prev = scan(lines, idx, first_line_no, c_prefixed, max_chars, p_name, prev)
                if stop > idx:
                    idx = stop
                    last_parsed = True
                    prev_ts, prev_pid, prev_comp = prev
            if idx >= n_lines:
                break
            line = lines[idx]
            ln = first_line_no + idx
            if has_cr and line.endswith("\r"):
                line = line[:-1]
            if not line or (line[0] in " \t" and line.isspace()):
                pending_blank.append((ln, line))
                continue
            trunc = False
            if len(line) > max_chars:
                enc = line.encode("utf-8")
                if len(enc) > max_line_bytes:
                    line = enc[:max_line_bytes].decode("utf-8", "ignore")
                    trunc = True
                    truncated += 1
            bad = idx in bad_lines if bad_lines else False
            text = line
            cri_ts = None
            start_ln = ln
            raw = None  # the row's raw text when it is not simply its input line
            if is_cri:
                cm = CRI.match(line)
                if cm is not None:
                    cri_ts, _stream, tag, text = cm.groups()
                    if tag == "P":  # kubelet split a long line; the F line completes it
                        if not partial:
                            partial_start = ln
                        partial.append(line)
                        continue
                    if not partial and (not text or text.isspace()):  # kubelet's record of an empty line
                        pending_blank.append((ln, line))
                        continue
                    if partial:
                        text = "".join(CRI.match(p).group(4) for p in partial) + text
                        start_ln = partial_start
                        raw = "\n".join(partial + [line])
                        partial = []
            g = c_header(text, c_prefixed) if c_header is not None else None
            if g is None:  # no C path for this layout, or a non-ASCII line: the regex decides
                m = p_match(text)
                g = (m.groups() if p_idx is None else m.group(*p_idx)) if m is not None else False
            if g is not False:
                lname, fix = p_name, p_fix
            else:
                g = None
                for lay, gi in others:
                    m = lay.regex.match(text)
                    if m is not None:
                        g = m.groups() if gi is None else m.group(*gi)
                        lname, fix = lay.name, lay.fix
                        break
            if g is None:
                # No header: a traceback or wrapped line of the record before it (a multi-line message: HTTP
                # headers, JSON bodies, taskflow's state dumps), else, before any record, an unparsed one.
                opens = text.startswith(_TRACEBACK) or text.startswith(_CHAINED)
                indented = text[0] in " \t"
                if rows and (opens or indented or in_tb == "bare" or last_parsed):
                    for bln, bline in pending_blank:  # blank lines inside a traceback belong to it
                        attach(bline, bln, False, False)
                    continuation += len(pending_blank) + 1
                    pending_blank = []
                    attach(line, ln, trunc, bad)
                    if opens:
                        in_tb = "bare"
                    elif not indented:
                        in_tb = ""  # the exception line closes a header-less traceback
                    continue
                if pending_blank:
                    blank += len(pending_blank)
                    pending_blank = []
                unparsed += 1
                in_tb = ""
                last_parsed = False
                prev_ts = prev_pid = prev_comp = None
                if trunc or bad or start_ln != ln:
                    mark(ln, trunc, bad)
                    raw = raw or line
                append((start_ln, cri_ts, None, None, None, None, None, _instance(text), text, template_of(text),
                        "unparsed", raw or base_raw(idx)))
                continue

            origin, ts, pid, level, comp, ctx, msg = g
            if fix is not None:
                ts = fix(m, year)
            elif not ts and cri_ts:
                ts = cri_ts
            if ts == prev_ts and pid == prev_pid and comp == prev_comp and rows:
                if in_tb or level == "TRACE" or _TRACEBACK in msg[:120]:
                    # oslo repeats the header on every line of a traceback: one record
                    for bln, bline in pending_blank:
                        attach(bline, bln, False, False)
                    continuation += len(pending_blank) + 1
                    pending_blank = []
                    attach(line, ln, trunc, bad)
                    in_tb = "header"
                    continue
            if pending_blank:
                blank += len(pending_blank)
                pending_blank = []
            in_tb = ""
            last_parsed = True
            prev_ts, prev_pid, prev_comp = ts, pid, comp
            if msg.startswith(_INSTANCE):
                inst = msg[11 : msg.find("]")]
            else:
                inst = _instance(msg) if _INSTANCE in msg else None
            tpl = c_tpl(msg) if c_tpl is not None else None
            if tpl is None:
                tpl = regex_sub(W, msg)
            if trunc or bad or start_ln != ln:
                mark(ln, trunc, bad)
                raw = raw or line
            append((start_ln, ts, pid, level, comp, origin, ctx, inst, msg, tpl, lname, raw or base_raw(idx)))
        blank += len(pending_blank)
        if partial:  # the input ends inside a split line: keep the pieces as one unparsed record
            text = "".join(CRI.match(p).group(4) for p in partial)
            unparsed += 1
            flags[len(rows)] = (first_line_no + len(lines) - 1, False, False)
            append((partial_start, None, None, None, None, None, None, None, text, template_of(text), "unparsed",
                    "\n".join(partial)))
    finally:
        if gc_was:
            gc.enable()

    table = _to_table(_columns(rows), ext, flags, source, path_service)
    layouts_seen = {
        item["values"]: item["counts"]
        for item in pc.value_counts(table["layout"]).to_pylist()
        if item["values"] != "unparsed"
    } if table.num_rows else {}
    return ChunkResult(
        table=table, lines=len(lines), blank=blank, unparsed=unparsed, continuation=continuation,
        truncated=truncated, decode_errors=len(bad_lines), layouts=layouts_seen,
    )


def _none_if_empty(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _dash_to_null(arr: pa.Array) -> pa.Array:
    return pc.if_else(pc.is_in(arr, pa.array(["-", "None", ""])), pa.scalar(None, pa.string()), arr)


def _context_columns(ctx: pa.Array) -> tuple[pa.Array, pa.Array, pa.Array, pa.Array]:
    """Split oslo context brackets into (request, global request, user, project), vectorised.

    Forms: ``req-R user project - - -`` (pre-Pike), ``None req-R user project - default default`` (Pike+),
    ``req-G req-R user project …`` (global request id), DevStack's ``None req-R admin admin``, and ``-``.
    """
    padded = pc.binary_join_element_wise(pc.fill_null(ctx, "-"), "- - - -", " ")
    parts = pc.split_pattern(padded, " ", max_splits=4)
    p = [pc.list_element(parts, i) for i in range(4)]
    req0 = pc.starts_with(p[0], "req-")
    req1 = pc.starts_with(p[1], "req-")
    lead = pc.is_in(p[0], pa.array(["None", "-"]))
    with_global = pc.and_(req0, req1)
    shifted = pc.or_(with_global, pc.and_(lead, req1))  # ids start at the third word
    plain = pc.and_(req0, pc.invert(req1))  # ids start at the second word
    null = pa.scalar(None, pa.string())
    glob = pc.if_else(with_global, p[0], null) if pc.any(with_global).as_py() else pa.nulls(len(ctx), pa.string())
    req = pc.if_else(shifted, p[1], pc.if_else(plain, p[0], null))
    user = pc.if_else(shifted, p[2], pc.if_else(plain, p[1], null))
    proj = pc.if_else(shifted, p[3], pc.if_else(plain, p[2], null))
    return req, glob, _dash_to_null(user), _dash_to_null(pc.utf8_rtrim(proj, characters=" "))


def _services(origin: pa.Array, comp: pa.Array, layout: pa.Array, path_service: Optional[str]) -> pa.Array:
    """Service per row, resolved once per distinct (origin, component, layout), not once per line."""
    n = len(origin)
    if path_service is not None and origin.null_count == n:
        return pa.repeat(pa.scalar(path_service, pa.string()), n)  # the file names it and no line overrides
    key = pc.binary_join_element_wise(
        pc.fill_null(origin, ""), pc.fill_null(comp, ""), pc.fill_null(layout, ""), "\x1f"
    ).dictionary_encode()
    names = []
    for k in key.dictionary.to_pylist():
        o, c, lay = k.split("\x1f")
        if lay == "unparsed":
            names.append(path_service)
        else:
            names.append(services.resolve(path_service, o or None, c or None) or _LAYOUT_SERVICE.get(lay))
    return pc.take(pa.array(names, pa.string()), key.indices)


_STR_COLUMNS = ("ts", "pid", "level", "comp", "origin", "ctx", "inst", "msg", "template", "layout", "raw")


def _columns(rows) -> tuple[int, pa.Array, dict[str, pa.Array]]:
    """The rows as ``(count, line_no, {column: strings})``, from the C builder's buffers or from tuples."""
    if isinstance(rows, list):
        if not rows:
            return 0, pa.array([], pa.int32()), {}
        cols = list(zip(*rows))
        return len(rows), pa.array(cols[0], pa.int32()), {
            name: pa.array(col, pa.string()) for name, col in zip(_STR_COLUMNS, cols[1:])
        }
    n, line_no, buffers = rows.finish()
    return n, pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(line_no)]), {
        name: pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(off), pa.py_buffer(data)])
        for name, (off, data) in zip(_STR_COLUMNS, buffers)
    }


def _patched(arr: pa.Array, rows: list[int], values: list, type_: pa.DataType) -> pa.Array:
    """``arr`` with ``values`` at the (sorted) ``rows``."""
    mask = np.zeros(len(arr), np.bool_)
    mask[rows] = True
    return pc.replace_with_mask(arr, pa.array(mask), pa.array(values, type_))


def _to_table(columns: tuple[int, pa.Array, dict[str, pa.Array]], ext: dict[int, list],
              flags: dict[int, tuple], source: str, path_service: Optional[str]) -> pa.Table:
    n, line_no_arr, c = columns
    if n == 0:
        return SCHEMA.empty_table()
    # rows that span lines or were cut or repaired: their end, flags, raw text and exception, patched in
    line_end = {row: end for row, (end, _t, _b) in flags.items()}
    trunc = {row for row, (_e, t, _b) in flags.items() if t}
    bad = {row for row, (_e, _t, b) in flags.items() if b}
    raw_arr = c["raw"]
    exc_arr = pa.nulls(n, pa.string())
    if ext:
        rows = sorted(ext)
        firsts = raw_arr.take(pa.array(rows, pa.int64())).to_pylist()
        joined = []
        for row, first in zip(rows, firsts):
            end, extra, t, b = ext[row]
            line_end[row] = end
            joined.append("\n".join([first, *extra]))
            if t:
                trunc.add(row)
            if b:
                bad.add(row)
        raw_arr = _patched(raw_arr, rows, joined, pa.string())
        exc_arr = _patched(exc_arr, rows, [exception_line(r) for r in joined], pa.string())
    end_arr = line_no_arr
    if line_end:
        rows = sorted(line_end)
        end_arr = _patched(line_no_arr, rows, [line_end[r] for r in rows], pa.int32())
    trunc_arr, bad_arr = (_patched(pa.repeat(False, n), sorted(marked), [True] * len(marked), pa.bool_())
                          if marked else pa.repeat(False, n) for marked in (trunc, bad))

    layout_arr = c["layout"]
    used = set(pc.unique(layout_arr).to_pylist())
    ts_arr = c["ts"]
    if used & {"mysql"}:
        ts_arr = pc.replace_substring_regex(ts_arr, r"^(\d{4}-\d\d-\d\d) +(\d):", r"\1T0\2:")  # MariaDB " 9:00"
    ts_arr = pc.replace_substring(ts_arr, " ", "T", max_replacements=1)
    ts_arr = pc.replace_substring(ts_arr, ",", ".", max_replacements=1)
    if used & {"libvirt", "rabbitmq"}:
        ts_arr = pc.replace_substring_regex(ts_arr, r"([+-]\d\d)(\d\d)$", r"\1:\2")  # +0000 -> +00:00
    ts_arr = _none_if_empty(ts_arr)
    level_arr = c["level"].dictionary_encode()
    canon = pa.array([level_of(v) for v in level_arr.dictionary.to_pylist()], pa.string())  # "" -> None
    level_arr = pc.take(canon, level_arr.indices)
    comp_arr = _none_if_empty(c["comp"])
    for lay_name, default in DEFAULT_COMPONENT.items():
        if lay_name in used:
            sel = pc.and_(pc.equal(layout_arr, lay_name), pc.is_null(comp_arr))
            comp_arr = pc.if_else(sel, pa.scalar(default), comp_arr)
    pid_arr = pc.cast(_none_if_empty(c["pid"]), pa.int32())
    tpl_arr = c["template"]
    tpl_dict = tpl_arr.dictionary_encode()
    tid_arr = pc.take(pa.array([template_id(t) for t in tpl_dict.dictionary.to_pylist()], pa.string()),
                      tpl_dict.indices)
    req, glob, user, proj = _context_columns(_none_if_empty(c["ctx"]))
    if "journald" in used:  # DevStack's context format names the project before the user
        dev = pc.equal(layout_arr, "journald")
        user, proj = pc.if_else(dev, proj, user), pc.if_else(dev, user, proj)
    cols = [
        pa.repeat(pa.scalar(source, pa.string()), n),
        line_no_arr,
        end_arr,
        ts_arr,
        pid_arr,
        level_arr,
        comp_arr,
        _services(_none_if_empty(c["origin"]), comp_arr, layout_arr, path_service),
        req,
        glob,
        user,
        proj,
        _none_if_empty(c["inst"]),
        c["msg"],
        tid_arr,
        tpl_arr,
        exc_arr,
        layout_arr,
        pc.not_equal(layout_arr, "unparsed"),
        trunc_arr,
        bad_arr,
        raw_arr,
    ]
    return pa.Table.from_arrays(cols, schema=SCHEMA)


def template_stats(table: pa.Table) -> dict[str, tuple[str, int, Optional[str], Optional[str]]]:
    """``{template_id: (template, count, first_ts, last_ts)}`` for a record table.

    Once per file, in the parent: a group-by loads Arrow's query engine (~60 ms), which parse workers never need.
    """
    if table.num_rows == 0:
        return {}
    agg = table.group_by(["template_id", "template"]).aggregate(
        [("template_id", "count"), ("timestamp", "min"), ("timestamp", "max")]
    )
    return {
        t: (tpl, n, lo, hi)
        for t, tpl, n, lo, hi in zip(
            agg["template_id"].to_pylist(), agg["template"].to_pylist(), agg["template_id_count"].to_pylist(),
            agg["timestamp_min"].to_pylist(), agg["timestamp_max"].to_pylist(),
        )
    }
