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

SIGNALS = ("severity", "lexical", "semantic", "relevance", "lstm", "novelty", "model_weight", "onset", "baseline")
# What each signal measures, for the detail view (the main table shows the log line, not these numbers).
SIGNAL_HELP = {
    "severity": "how serious the record is: its level, a traceback, an error word",
    "lexical": "words it shares with the issue",
    "semantic": "how close its meaning is to the issue (hybrid mode)",
    "relevance": "the issue relevance the ranking uses (lexical and semantic together)",
    "lstm": "how unexpected the LSTM found it in its sequence",
    "novelty": "1 when its template never appeared in the model's training logs",
    "model_weight": "how much the model's view counts on these logs (low when they are unfamiliar to it)",
    "onset": "how close it is to the incident's onset",
    "baseline": "its rate in the incident over its rate earlier in these logs (99: new with the incident)",
}
RATE_UNIT = "unexpected events per minute"

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


EVIDENCE_COLUMNS = ["id", "text", "host", "service", "level", "time", "count", "role", "source"]


def clock_times(stamps: list[Any]) -> list[str]:
    """Times as short as they can be read: ``09:23:44.584`` when all fall on one day, else with the date."""
    full = [short_time(t) for t in stamps]
    one_day = len({t[:10] for t in full if t}) <= 1
    return [t[11:23] if one_day else t[:23] for t in full]


def evidence_frame(evidence: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per evidence item, led by what an operator reads: the log text, then host and service. The signal
    scores are not here (they pushed the text off screen): ``signals_frame`` shows them per item."""
    times = clock_times([e.get("timestamp") for e in evidence])
    rows = [{"id": e.get("id"), "text": " ".join(str(e.get("text") or "").split()), "host": e.get("host") or "—",
             "service": e.get("service"), "level": e.get("level"), "time": t, "count": e.get("count"),
             "role": str(e.get("role") or "").replace("_", " "),
             "source": f"{str(e.get('source') or '').rsplit('/', 1)[-1]}:{e.get('line_no')}"}
            for e, t in zip(evidence, times)]
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


def signals_frame(ev: dict[str, Any]) -> pd.DataFrame:
    """One evidence item's score and signals with what each measures: the detail view behind a table row."""
    sig = ev.get("signals") or {}
    keys = [k for k in SIGNALS if k in sig] + sorted(set(sig) - set(SIGNALS))
    rows = [{"signal": "score", "value": ev.get("score"), "meaning": "the rank score these combine into"}]
    rows += [{"signal": k, "value": sig[k], "meaning": SIGNAL_HELP.get(k, "")} for k in keys]
    return pd.DataFrame(rows, columns=["signal", "value", "meaning"])


def code_location(code: dict[str, Any] | None) -> str | None:
    """``cinder/scheduler/filter_scheduler.py:_choose_top_backend line 304 (TypeError)``, or None."""
    if not code or not code.get("module"):
        return None
    where = str(code["module"]) + (f":{code['function']}" if code.get("function") else "")
    where += f" line {code['line']}" if code.get("line") is not None else ""
    return where + (f" ({code['exception']})" if code.get("exception") else "")


def card_warnings(report: dict[str, Any]) -> list[str]:
    """The warnings the root-cause card shows: the root cause's own (an unfamiliar model) first, then the
    report's (a host mismatch, a fallback to fast mode...), each once."""
    rc = report.get("root_cause") or {}
    return list(dict.fromkeys(str(w) for w in [*(rc.get("warnings") or []), *(report.get("warnings") or [])] if w))


def chain_frame(report: dict[str, Any]) -> pd.DataFrame:
    """The root cause's chain, from the cause to what the user saw: ``▶`` marks the cause; ``api`` names the
    API call that failed (the column only when one did)."""
    chain = (report.get("root_cause") or {}).get("chain") or []
    times = clock_times([s.get("time") for s in chain])
    rows = [{"": "▶" if s.get("root_cause") else "", "time": t, "service": s.get("service"),
             "level": s.get("level"), "evidence": s.get("evidence_id") or "",
             "text": " ".join(str(s.get("text") or "").split()), "api": s.get("api") or ""}
            for s, t in zip(chain, times)]
    cols = ["", "time", "service", "level", "evidence", "text"] + (["api"] if any(r["api"] for r in rows) else [])
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
    """``series`` (times + per-service rate of unexpected events per bucket) as long form: time (UTC, naive),
    service, rate (events per minute)."""
    if not series or not series.get("times"):
        return pd.DataFrame(columns=["time", "service", "rate"])
    times = pd.to_datetime(series["times"], utc=True, format="ISO8601").tz_convert(None)
    parts = []
    for svc, vals in (series.get("services") or {}).items():
        n = min(len(vals), len(times))
        parts.append(pd.DataFrame({"time": times[:n], "service": svc, "rate": [float(v or 0) for v in vals[:n]]}))
    if not parts:
        return pd.DataFrame(columns=["time", "service", "rate"])
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
    """Unexpected events per minute per service over time (a rate, so the incident stands out against steady
    chatter; a per-bucket maximum sat at 1.0 all hour on real logs): one line per service, the services the
    report points at in colour (the root cause's drawn thickest), the others in grey behind them; the root cause
    (or, with no root cause, the first symptom) marked by a labelled vertical rule. None when there is no series."""
    data = series_frame(report.get("series"))
    if data.empty:
        return None
    rc_service = (report.get("root_cause") or {}).get("service") or ""
    focus = [s for s in focus_services(report) if s in set(data["service"])] or sorted(set(data["service"]))
    x = alt.X("time:T", title="time (UTC)", scale=alt.Scale(type="utc"), axis=alt.Axis(format="%H:%M"))
    unit = str((report.get("series") or {}).get("unit") or RATE_UNIT)
    y = alt.Y("rate:Q", title=unit, scale=alt.Scale(zero=True, nice=True))
    tooltip = [alt.Tooltip("service:N"), alt.Tooltip("when:N", title="time (UTC)"),
               alt.Tooltip("rate:Q", title=unit, format=".1f")]
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
            x=rx, y=alt.value(8), text="label:N"))  # pixels from the top, whatever the rates
    return alt.layer(*layers).properties(height=height)


def timeline_frame(report: dict[str, Any]) -> pd.DataFrame:
    rows = [{"time": short_time(t.get("time")), "id": t.get("evidence_id"), "kind": t.get("kind"),
             "service": t.get("service"), "level": t.get("level"), "count": t.get("count"), "event": t.get("event")}
            for t in report.get("timeline") or []]
    return pd.DataFrame(rows, columns=["time", "id", "kind", "service", "level", "count", "event"])
