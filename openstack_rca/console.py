"""Terminal rendering for the CLI (rich): tables for people, progress on a TTY, nothing on pipes.

Log text is untrusted: everything that came from a log or a path is escaped (or passed as a plain ``Text``), so
"[instance: …]" or a crafted "[link=…]" in a message is printed as text, never read as rich markup, and terminal
control codes in it are shown as escapes, never sent to the terminal.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterator

from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table
from rich.text import Text

# Pipes and CI logs get a wide fixed width instead of rich's 80 columns; terminals keep their own.
out = Console(highlight=False, soft_wrap=False, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, highlight=False)

PROGRESS_MIN_BYTES = 8 * 1024 * 1024


@contextlib.contextmanager
def byte_progress(label: str, total_hint: int) -> Iterator[Any]:
    """Yield a ``progress(done, total)`` callback: a bar on an interactive stderr for large inputs, else a no-op."""
    if not (sys.stderr.isatty() and total_hint >= PROGRESS_MIN_BYTES):
        yield None
        return
    with Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
        TimeRemainingColumn(), console=err, transient=True,
    ) as bar:
        task = bar.add_task(label, total=total_hint)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def parse_summary(summary: dict, overview: dict) -> None:
    t = summary["totals"]
    out.print(
        f"[bold]{t['files']}[/] files, [bold]{t['lines']:,}[/] lines -> [bold]{t['records']:,}[/] records "
        f"({t['continuation']:,} continuation lines joined, {t['blank']:,} blank, {t['unparsed']:,} unparsed), "
        f"{overview['templates']} templates, {summary['seconds']:.2f}s"
    )
    skipped = {k: t[f"files_{k}"] for k in ("cached", "empty", "binary", "unreadable") if t[f"files_{k}"]}
    if skipped:
        out.print("files: " + ", ".join(f"{v} {k}" for k, v in skipped.items()))
    for f in summary["files"]:
        for w in f["warnings"]:
            err.print(f"[yellow]warning[/] {escape(f['path'])}: {escape(w)}")
    if overview["services"]:
        table = Table(title="Records per service", title_justify="left")
        for col in ("service", "records", "errors", "warnings", "templates", "first", "last"):
            table.add_column(col, justify="right" if col in ("records", "errors", "warnings", "templates") else "left")
        for s in overview["services"]:
            err_style = "bold red" if s["errors"] else ""
            table.add_row(
                escape(s["service"]), f"{s['records']:,}", f"[{err_style}]{s['errors']:,}[/]" if err_style else "0",
                f"{s['levels'].get('WARNING', 0):,}", str(s["templates"]), _clock(s["first"]), _clock(s["last"]),
            )
        out.print(table)
    if overview["top_error_templates"]:
        table = Table(title="Most frequent ERROR/CRITICAL templates", title_justify="left")
        for col in ("count", "first seen", "services", "template"):
            table.add_column(col, justify="right" if col == "count" else "left", overflow="fold")
        for r in overview["top_error_templates"]:
            table.add_row(str(r["count"]), _clock(r["first"]), escape(", ".join(r["services"])), escape(r["template"]))
        out.print(table)
    elif overview["records"]:
        out.print("[green]no ERROR or CRITICAL records[/]")


def _clock(ts: str | None) -> str:
    """``2026-11-23T09:38:40.205+00:00`` -> ``2026-11-23 09:38:40``: enough to read a timeline at a glance."""
    return ts[:19].replace("T", " ") if ts else "-"


def key_values(title: str, data: dict[str, Any]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    for k, v in data.items():
        table.add_row(escape(str(k)), escape(str(v)))
    out.print(table)


def templates(rows: list[dict]) -> None:
    table = Table(title=f"{len(rows)} templates", title_justify="left")
    for col in ("id", "count", "first seen", "template"):
        table.add_column(col, justify="right" if col == "count" else "left", overflow="fold")
    for r in rows:
        table.add_row(r["template_id"], f"{r['count']:,}", r["first_seen"] or "-", escape(r["template"]))
    out.print(table)


@contextlib.contextmanager
def epoch_progress(epochs: int) -> Iterator[Any]:
    """Yield an ``on_epoch(epoch, logs)`` callback: a bar with the loss on an interactive stderr, else a no-op."""
    if not sys.stderr.isatty():
        yield None
        return
    with Progress(TextColumn("[bold]training[/]"), BarColumn(), TextColumn("epoch {task.completed}/{task.total}"),
                  TextColumn("{task.fields[loss]}"), console=err, transient=True) as bar:
        task = bar.add_task("train", total=epochs, loss="")

        def update(epoch: int, logs: dict) -> None:
            bar.update(task, completed=epoch + 1, loss=f"loss {logs.get('loss', float('nan')):.3f}")

        yield update


def model_versions(name: str, rows: list[dict]) -> None:
    table = Table(title=f"{escape(name)}: {len(rows)} versions", title_justify="left")
    for col in ("version", "aliases", "run", "top-g acc", "session FPR"):
        table.add_column(col)
    for r in rows:
        m = r["metrics"]
        table.add_row(r["version"], escape(", ".join(r["aliases"])), r["run_id"] or "-",
                      f"{m['top_g_accuracy']:.3f}" if "top_g_accuracy" in m else "-",
                      f"{m['session_false_positive_rate']:.3f}" if "session_false_positive_rate" in m else "-")
    out.print(table)


def anomalies(result: dict) -> None:
    m = result["model"]
    out.print(f"model {escape(m['name'])} version {m['version']} ({m['source']}), {result['records']:,} records")
    table = Table(title="Most anomalous lines per session", title_justify="left")
    for col in ("session", "time", "service", "level", "importance", "line"):
        table.add_column(col, overflow="fold", justify="right" if col == "importance" else "left")
    for sess in result["sessions"]:
        for i, line in enumerate(sess["lines"]):
            table.add_row(escape(sess["session"]) if i == 0 else "", _clock(line["timestamp"]),
                          escape(line["service"] or "-"), line["level"] or "-", f"{line['importance']:.2f}",
                          escape(line["text"]))
    out.print(table)


def evaluation(result: dict) -> None:
    m = result["model"]
    table = Table(title=f"model {escape(m['name'])} version {m['version']}: anomalous-session detection",
                  title_justify="left")
    for col in ("fault", "sessions", "anomalous", "flagged", "precision", "recall", "F1", "FPR"):
        table.add_column(col, justify="left" if col == "fault" else "right")

    def f(x):
        return "-" if x is None else f"{x:.3f}"

    for r in result["results"]:
        table.add_row(escape(r["fault"]), str(r["sessions"]), str(r["anomalous_sessions"]), str(r["flagged_sessions"]),
                      f(r["precision"]), f(r["recall"]), f(r["f1"]), f(r["false_positive_rate"]))
    out.print(table)


# -- the analysis report ---------------------------------------------------------------------------------------
# The evidence and chain tables lead with the log text: the small columns get fixed widths that fit their values
# and the text takes the rest, so nothing collapses to zero width when the terminal is narrow.
SIGNAL_ORDER = ("severity", "lexical", "semantic", "relevance", "lstm", "novelty", "model_weight", "onset",
                "baseline")
LEVEL_SHORT = {"WARNING": "WARN", "CRITICAL": "CRIT"}
ROLE_STYLE = {"root_cause": "bold red", "precursor": "yellow", "same_failure": "red"}
TEXT_CHARS = 240  # a cell shows at most this much of a log line (and 3 lines of it): the full line is in --json
TEXT_LINES = 3
TEXT_MIN = 120  # ... but never less than this on a narrow terminal
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class _Col:
    """A compact column: ``width`` None is the flexible text column; ``min_width`` is how far it may shrink."""

    name: str
    width: int | None = None
    min_width: int = 1
    justify: str = "left"


def _flat(text: Any, limit: int = TEXT_CHARS) -> str:
    """One line of untrusted log text: whitespace folded, terminal control codes shown, not sent, and capped."""
    s = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(str(text if text is not None else "").split()))
    return s if len(s) <= limit else s[: limit - 1] + "…"


def _layout(cols: list[_Col], total: int) -> list[int]:
    """Widths for ``cols`` within ``total`` columns (one space between columns): the text column gets what is
    left, but at least ~40% of the line; to give it that, the shrinkable columns give up width down to their
    minimum."""
    widths = [c.width or 0 for c in cols]
    flex = next(i for i, c in enumerate(cols) if c.width is None)
    want = max(cols[flex].min_width, int(total * 0.4))

    def room() -> int:
        return total - (len(cols) - 1) - sum(w for i, w in enumerate(widths) if i != flex)

    while room() < want:
        shrink = [i for i, c in enumerate(cols) if i != flex and widths[i] > c.min_width]
        if not shrink:
            break
        widest = max(shrink, key=lambda i: widths[i] - cols[i].min_width)
        widths[widest] -= 1
    widths[flex] = max(cols[flex].min_width, room())
    return widths


def _compact_table(cols: list[_Col], total: int, title: str | None = None) -> tuple[Table, int]:
    """A borderless table laid out by ``_layout``, and the width its text column got."""
    widths = _layout(cols, total)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 0), header_style="bold")
    for c, w in zip(cols, widths):
        flexible = c.width is None
        table.add_column(c.name, width=w, justify=c.justify, no_wrap=not flexible,
                         overflow="fold" if flexible else "ellipsis")
    return table, max(w for c, w in zip(cols, widths) if c.width is None)


def _fit(values: list[Any], floor: int, cap: int) -> int:
    """The width the longest value needs, between ``floor`` and ``cap``."""
    return max(floor, min(cap, max((len(str(v)) for v in values), default=floor)))


def _time_cut(stamps: list[Any]) -> int:
    """Clock time only (``09:38:40``) when every stamp is on one day; with the month and day when they span days."""
    days = {_clock(t)[:10] for t in stamps if t}
    return 11 if len(days) <= 1 else 5


def _when(ts: Any, cut: int) -> str:
    return _clock(ts)[cut:] if ts else "-"


def _level(level: Any) -> str:
    return LEVEL_SHORT.get(str(level or ""), str(level or "-"))


def evidence_table(evidence: list[dict], width: int) -> Table:
    """Id, time, service, host, level, count and the log text; the root cause's row in bold red."""
    cut = _time_cut([e.get("timestamp") for e in evidence])
    cols = [
        _Col("id", _fit([e.get("id") for e in evidence], 2, 4), 2),
        _Col("time", 19 - cut, 19 - cut),
        _Col("service", _fit([e.get("service") for e in evidence], 7, 16), 7),
        _Col("host", _fit([e.get("host") or "-" for e in evidence], 4, 12), 4),
        _Col("level", 5, 5),
        _Col("n", _fit([e.get("count", 1) for e in evidence], 1, 7), 1, "right"),
        _Col("text", None, 20),
    ]
    table, text_w = _compact_table(cols, width, title="evidence")
    limit = min(TEXT_CHARS, max(TEXT_MIN, TEXT_LINES * text_w))
    for e in evidence:
        table.add_row(
            Text(str(e.get("id") or "")), _when(e.get("timestamp"), cut), Text(_flat(e.get("service") or "-", 40)),
            Text(_flat(e.get("host") or "-", 40)), Text(_level(e.get("level"))), str(e.get("count", 1)),
            Text(_flat(e.get("text"), limit)), style=ROLE_STYLE.get(e.get("role"), ""))
    return table


def chain_table(chain: list[dict], width: int) -> Table:
    """The steps from the root cause to what the user saw; ``▶`` marks the root cause, the failed API call in
    cyan under its line."""
    cut = _time_cut([s.get("time") for s in chain])
    cols = [_Col("", 1, 1), _Col("time", 19 - cut, 19 - cut),
            _Col("service", _fit([s.get("service") for s in chain], 7, 16), 7),
            _Col("level", 5, 5),
            _Col("ev", _fit([s.get("evidence_id") or "" for s in chain], 2, 4), 2), _Col("step", None, 20)]
    table, text_w = _compact_table(cols, width, title="chain: root cause → what the user saw")
    for s in chain:
        step = Text(_flat(s.get("text"), min(TEXT_CHARS, max(TEXT_MIN, TEXT_LINES * text_w))))
        if s.get("api"):
            step.append(f"\n→ {_flat(s['api'], 120)}", style="cyan")
        table.add_row("▶" if s.get("root_cause") else "", _when(s.get("time"), cut),
                      Text(_flat(s.get("service") or "-", 40)), Text(_level(s.get("level"))),
                      Text(str(s.get("evidence_id") or "")), step,
                      style="bold red" if s.get("root_cause") else "")
    return table


def signals_table(evidence: list[dict]) -> Table:
    """The detail view (``--details``): each evidence item's role, score and every signal behind it."""
    present = {k for e in evidence for k in (e.get("signals") or {})}
    keys = [k for k in SIGNAL_ORDER if k in present] + sorted(present - set(SIGNAL_ORDER))
    table = Table(title="signals per evidence item", title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("id", no_wrap=True)
    table.add_column("role", no_wrap=True)
    for k in ("score", *keys):
        table.add_column(k, justify="right", no_wrap=True)
    table.add_column("where", overflow="fold")
    for e in evidence:
        sg = e.get("signals") or {}
        table.add_row(Text(str(e.get("id"))), Text(str(e.get("role") or "-")), _num(e.get("score")),
                      *(_num(sg.get(k)) for k in keys), Text(f"{_base(e.get('source') or '')}:{e.get('line_no')}"))
    return table


def _num(x: Any) -> str:
    return "-" if x is None else f"{float(x):.2f}"


def _code_line(code: dict | None) -> str | None:
    """``cinder/scheduler/filter_scheduler.py:_choose_top_backend line 304 (TypeError)``: where to look."""
    if not code or not code.get("module"):
        return None
    where = str(code["module"]) + (f":{code['function']}" if code.get("function") else "")
    where += f" line {code['line']}" if code.get("line") is not None else ""
    return where + (f" ({code['exception']})" if code.get("exception") else "")


def _root_lines(rep: dict) -> list[str]:
    """The root cause in markup: what, the quote, where in the code, who logged it and where, since when."""
    rc = rep["root_cause"]
    conf = float(rc.get("confidence") or 0.0)
    if not rc.get("component"):
        return [f"[bold yellow]No evidence found[/]  confidence: [bold]{conf:.2f}[/]  mode: {escape(rep['mode'])}",
                escape(_flat(rc.get("summary"), 400))]
    lines = [f"[bold red]{escape(str(rc['component']))}[/]  category: [bold]{escape(str(rc.get('category') or '-'))}"
             f"[/]  confidence: [bold]{conf:.2f}[/]  mode: {escape(rep['mode'])}"]
    eid = f"  [dim]({escape(str(rc['evidence_id']))})[/]" if rc.get("evidence_id") else ""
    lines.append(f"[bold]{escape(_flat(rc.get('quote') or rc.get('summary'), 400))}[/]{eid}")
    code = _code_line(rc.get("code"))
    if code:
        lines.append(f"code: {escape(_flat(code, 200))}")
    host = escape(_flat(rc["host"], 80)) if rc.get("host") else "a host the logs do not name"
    where = f"logged by {escape(_flat(rc.get('service') or '?', 80))} on {host}"
    if rc.get("host_matches") is False:
        where += "  [yellow](not the host the issue names)[/]"
    if rc.get("first_seen"):
        where += f"  first seen {escape(_clock(rc['first_seen']))}"
    lines.append(where)
    return lines


def _warnings(rep: dict) -> list[str]:
    """The root cause's own warnings (an unfamiliar model) first, then the report's (a host mismatch...)."""
    return list(dict.fromkeys([*(rep["root_cause"].get("warnings") or []), *(rep.get("warnings") or [])]))


def root_cause_panel(rep: dict, width: int) -> Panel:
    """The card an SRE reads first: the cause, its quote and code location, the warnings, the chain."""
    parts: list[Any] = [Text.from_markup("\n".join(_root_lines(rep)))]
    parts += [Text.from_markup(f"[yellow]warning:[/] {escape(_flat(w, 600))}") for w in _warnings(rep)]
    chain = rep["root_cause"].get("chain") or []
    if chain:
        parts.append(chain_table(chain, max(width - 4, 40)))
    return Panel(Group(*parts), title=f"root cause — {escape(_flat(rep['issue'], 80))}", title_align="left",
                 width=width)


def report(rep: dict, details: bool = False) -> None:
    """The analysis report: root-cause card, evidence (text first), signals with ``details``, narrative."""
    width = out.width
    out.print(root_cause_panel(rep, width))
    if rep["evidence"]:
        out.print(evidence_table(rep["evidence"], width))
        if details:
            out.print(signals_table(rep["evidence"]))
        else:
            out.print("[dim]per-signal scores: rca analyze … --details[/]")
    aff = rep.get("affected", {})
    out.print(f"affected: {len(aff.get('instances', []))} instances, {len(aff.get('requests', []))} requests, "
              f"services: {escape(', '.join(aff.get('services', [])) or '-')}")
    nar = rep.get("narrative")
    if nar:
        out.print(Panel(escape(nar["text"]), title=f"narrative ({escape(nar['source'])})", expand=False))
    tm = rep.get("timings_ms", {})
    out.print(f"[dim]model {escape(rep['model']['name'])} v{escape(str(rep['model']['version']))}; "
              + ", ".join(f"{k} {v:.0f} ms" for k, v in tm.items()) + "[/]")


def _base(path: str) -> str:
    return str(path).rsplit("/", 1)[-1]


def ingest_summary(res: dict) -> None:
    key_values(f"ingested corpus {res['corpus']}", {
        "records": res["input"]["records"], "lines": res["input"]["lines"], "unparsed": res["input"]["unparsed"],
        "semantic index": f"{res.get('templates', 0)} templates ({res.get('embedded', 0)} embedded now)"
        if res.get("indexed") else "not built (fast mode only)",
        "model": f"{res['model']['name']} v{res['model']['version']}",
        **{f"{k} ms": v for k, v in res["timings_ms"].items()},
    })
    for w in res.get("warnings", []):
        err.print(f"[yellow]warning:[/] {escape(w)}")
