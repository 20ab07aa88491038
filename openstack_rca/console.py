"""Terminal rendering for the CLI (rich): tables for people, progress on a TTY, nothing on pipes.

Log text is untrusted: everything that came from a log or a path is escaped, so "[instance: …]" or a crafted
"[link=…]" in a message is printed as text, never read as rich markup.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Iterator

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

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


def report(rep: dict) -> None:
    """The analysis report: root cause, evidence, timeline, narrative."""
    from rich.panel import Panel

    rc = rep["root_cause"]
    conf = float(rc.get("confidence") or 0.0)
    colour = "red" if rc.get("component") else "yellow"
    head = (f"[bold {colour}]{escape(str(rc.get('component') or 'no evidence'))}[/]"
            f"  category: [bold]{escape(str(rc.get('category') or '-'))}[/]  confidence: [bold]{conf:.2f}[/]"
            f"  mode: {escape(rep['mode'])}\n{escape(rc.get('summary') or '')}")
    out.print(Panel(head, title=f"root cause — {escape(rep['issue'][:80])}", expand=False))
    for w in rep.get("warnings", []):
        err.print(f"[yellow]warning:[/] {escape(w)}")
    t = Table(title="evidence (signals: lstm / tf-idf / semantic)", show_lines=False)
    for col, width in (("#", 3), ("time", 12), ("service", 16), ("level", 7), ("where", 22), ("score", 5),
                       ("signals", 15), ("n", 4), ("text", 70)):
        t.add_column(col, no_wrap=True, overflow="ellipsis", min_width=30 if col == "text" else width, max_width=width)
    for ev in rep["evidence"]:
        sg = ev["signals"]
        sig = "/".join(f"{sg[k]:.2f}" for k in ("lstm", "tfidf", "semantic") if k in sg)
        t.add_row(ev["id"], _clock(ev.get("timestamp"))[11:], escape(str(ev.get("service") or "")),
                  escape(str(ev.get("level") or "")), escape(f"{_base(ev['source'])}:{ev['line_no']}"),
                  f"{ev['score']:.2f}", sig, str(ev.get("count", 1)), escape(" ".join(str(ev["text"]).split())[:200]))
    out.print(t)
    if rep.get("timeline"):
        tl = Table(title="timeline")
        for col in ("time", "", "service", "event"):
            tl.add_column(col)
        for e in rep["timeline"]:
            mark = "[bold red]root cause[/]" if e["kind"] == "root_cause" else escape(e["evidence_id"])
            tl.add_row(_clock(e.get("time")), mark, escape(str(e.get("service") or "")), escape(e["event"]))
        out.print(tl)
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
