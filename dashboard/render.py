"""Pure helpers that turn a report into what the dashboard shows: escaped Markdown, linked citations, tables and
the timeline chart. No Streamlit calls here (app.py does the layout), so each piece is testable on its own.

Log text is untrusted: it only reaches Markdown through ``escape_md`` and is otherwise shown in dataframes and code
blocks, never as HTML.
"""

from __future__ import annotations

import re
from typing import Any

import altair as alt
import pandas as pd

from openstack_rca.diagnose.engine import NO_EVIDENCE  # below it the report says "No evidence found"

SIGNALS = ("lstm", "novelty", "severity", "onset", "tfidf", "semantic")

# Every ASCII punctuation character may be backslash-escaped in CommonMark; these are the ones that can start
# Markdown syntax (emphasis, links, images, code, HTML, headings, lists, tables, math, Streamlit's :color[...]).
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
_CITE = re.compile(r"\\\[(E\d{1,3})\\\]")


def escape_md(text: Any) -> str:
    """Text that Markdown renders literally: specials escaped, line breaks folded to spaces."""
    flat = " ".join(str(text if text is not None else "").split())
    return _MD_SPECIAL.sub(r"\\\1", flat)


def anchor(evidence_id: str) -> str:
    """The anchor of an evidence item's detail header (``E3`` -> ``evidence-e3``)."""
    return f"evidence-{str(evidence_id).lower()}"


def link_citations(text: str, known: set[str] | list[str]) -> str:
    """Escape ``text`` for Markdown, then turn each ``[E3]`` that names a known evidence item into a link to
    its detail anchor. Unknown ids stay plain (escaped) text."""
    known = set(known)

    def sub(m: re.Match) -> str:
        eid = m.group(1)
        return f"[{eid}](#{anchor(eid)})" if eid in known else m.group(0)

    return _CITE.sub(sub, escape_md(text))


def is_no_evidence(report: dict[str, Any]) -> bool:
    rc = report.get("root_cause") or {}
    return rc.get("component") is None or float(rc.get("confidence") or 0.0) < NO_EVIDENCE


def short_time(ts: Any) -> str:
    """``2026-11-23T09:23:44.584+00:00`` -> ``2026-11-23 09:23:44.584``."""
    if not ts:
        return ""
    s = str(ts).replace("T", " ")
    return re.sub(r"(Z|[+-]\d\d:?\d\d)$", "", s)


def evidence_frame(evidence: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per evidence item, with a column per signal score (``semantic`` only when hybrid gave one)."""
    signals = [s for s in SIGNALS if any(s in (e.get("signals") or {}) for e in evidence)]
    rows = []
    for e in evidence:
        sig = e.get("signals") or {}
        row = {"id": e.get("id"), "score": e.get("score")}
        row.update({s: sig.get(s) for s in signals})
        row.update({"service": e.get("service"), "level": e.get("level"), "time": short_time(e.get("timestamp")),
                    "count": e.get("count"), "text": e.get("text"),
                    "source": f"{str(e.get('source') or '').rsplit('/', 1)[-1]}:{e.get('line_no')}"})
        rows.append(row)
    cols = ["id", "score", *signals, "service", "level", "time", "count", "text", "source"]
    return pd.DataFrame(rows, columns=cols)


def context_frame(ev: dict[str, Any]) -> pd.DataFrame:
    """The evidence line and its neighbours; ``▶`` marks the line itself."""
    ctx = ev.get("context") or [{"line_no": ev.get("line_no"), "level": ev.get("level"), "text": ev.get("text"),
                                  "self": True}]  # an older report without context: the line alone
    rows = [{"line": f"{'▶ ' if c.get('self') else ''}{c.get('line_no') if c.get('line_no') is not None else ''}",
             "level": c.get("level") or "", "text": c.get("text")} for c in ctx]
    return pd.DataFrame(rows, columns=["line", "level", "text"])


def highlight_self(df: pd.DataFrame):
    """A Styler that shades the evidence line's own row (the neighbours stay plain)."""
    def shade(row: pd.Series) -> list[str]:
        on = str(row["line"]).startswith("▶")
        return ["background-color: rgba(255, 75, 75, 0.22); font-weight: bold" if on else "" for _ in row]

    return df.style.apply(shade, axis=1)


def context_block(ev: dict[str, Any]) -> str:
    """The same neighbourhood as plain text for a code block (``▶`` on the evidence line)."""
    df = context_frame(ev)
    return "\n".join(f"{r['line']:>8}  {str(r['level']):<8} {r['text']}" for _, r in df.iterrows())


def series_frame(series: dict[str, Any] | None) -> pd.DataFrame:
    """``series`` (times + per-service max anomaly per bucket) as long form: time (UTC, naive), service, anomaly."""
    if not series or not series.get("times"):
        return pd.DataFrame(columns=["time", "service", "anomaly"])
    times = pd.to_datetime(series["times"], utc=True).tz_convert(None)
    parts = []
    for svc, vals in (series.get("services") or {}).items():
        n = min(len(vals), len(times))
        parts.append(pd.DataFrame({"time": times[:n], "service": svc, "anomaly": [float(v or 0) for v in vals[:n]]}))
    if not parts:
        return pd.DataFrame(columns=["time", "service", "anomaly"])
    out = pd.concat(parts, ignore_index=True)
    out["when"] = out["time"].dt.strftime("%H:%M:%S")
    return out


def markers(report: dict[str, Any]) -> pd.DataFrame:
    """Vertical rules for the timeline: the root cause's first occurrence (and the incident onset when it is
    elsewhere); with no root cause, the first symptom the timeline lists."""
    rc = report.get("root_cause") or {}
    out: list[tuple[str, str]] = []
    if not is_no_evidence(report) and (rc.get("first_seen") or report.get("onset")):
        when = rc.get("first_seen") or report.get("onset")
        out.append((f"root cause: {rc.get('component')}", when))
        onset = report.get("onset")
        if onset and onset != when:
            out.append(("onset", onset))
    else:
        first = next((t for t in report.get("timeline") or [] if t.get("time")), None)
        if first:
            out.append((f"first symptom ({first.get('evidence_id')})", first["time"]))
    if not out:
        return pd.DataFrame(columns=["time", "label"])
    df = pd.DataFrame(out, columns=["label", "time"])
    df["time"] = pd.to_datetime(df["time"], utc=True, format="ISO8601").dt.tz_convert(None)
    return df[["time", "label"]]


def focus_services(report: dict[str, Any], limit: int = 6) -> list[str]:
    """The services worth a colour: the root cause's, the affected ones, then those of the top evidence."""
    rc = report.get("root_cause") or {}
    cand = [rc.get("service"), *((report.get("affected") or {}).get("services") or []),
            *[e.get("service") for e in (report.get("evidence") or [])[:5]]]
    out: list[str] = []
    for s in cand:
        if s and s not in out:
            out.append(s)
    return out[:limit]


def timeline_chart(report: dict[str, Any], *, height: int = 330) -> alt.LayerChart | None:
    """Anomaly per service over time: one line per service, the services the report points at in colour (the
    root cause's drawn thickest), the others in grey behind them; the root cause (or, with no root cause, the
    first symptom) marked by a labelled vertical rule. None when the report has no series."""
    data = series_frame(report.get("series"))
    if data.empty:
        return None
    rc_service = (report.get("root_cause") or {}).get("service") or ""
    focus = [s for s in focus_services(report) if s in set(data["service"])] or sorted(set(data["service"]))
    x = alt.X("time:T", title="time (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%H:%M"))
    y = alt.Y("anomaly:Q", title="max anomaly per bucket", scale=alt.Scale(domain=[0, 1.15]),
              axis=alt.Axis(values=[0, 0.5, 1.0]))
    tooltip = [alt.Tooltip("service:N"), alt.Tooltip("when:N", title="time (UTC)"),
               alt.Tooltip("anomaly:Q", format=".2f")]
    layers: list[Any] = []
    rest = data[~data["service"].isin(focus)]
    if not rest.empty:
        layers.append(alt.Chart(rest).mark_line(color="#b8b8b8", strokeWidth=1, opacity=0.45).encode(
            x=x, y=y, detail="service:N", tooltip=tooltip))
    layers.append(alt.Chart(data[data["service"].isin(focus)]).mark_line(point=alt.OverlayMarkDef(size=18)).encode(
        x=x, y=y,
        color=alt.Color("service:N", title="service", scale=alt.Scale(domain=focus),
                        legend=alt.Legend(orient="top", labelLimit=220, columns=3)),
        strokeWidth=alt.condition(alt.datum.service == rc_service, alt.value(3.5), alt.value(2)),
        tooltip=tooltip,
    ))
    mk = markers(report)
    if not mk.empty:
        base = alt.Chart(mk)
        rx = alt.X("time:T", scale=alt.Scale(type="utc"))
        layers.append(base.mark_rule(color="#d62728", strokeDash=[6, 3], size=2).encode(x=rx, tooltip=["label:N"]))
        layers.append(base.mark_text(align="left", dx=5, color="#d62728", fontWeight="bold", fontSize=12).encode(
            x=rx, y=alt.datum(1.1), text="label:N"))
    return alt.layer(*layers).properties(height=height)


def timeline_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = [{"time": short_time(t.get("time")), "id": t.get("evidence_id"), "kind": t.get("kind"),
             "service": t.get("service"), "level": t.get("level"), "count": t.get("count"), "event": t.get("event")}
            for t in report.get("timeline") or []]
    return pd.DataFrame(rows, columns=["time", "id", "kind", "service", "level", "count", "event"])
