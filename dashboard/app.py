"""The RCA console: ask about an incident, see the root cause, the evidence, the timeline and the narrative.

    streamlit run dashboard/app.py            # the engine in this process (RCA_HOME as for the CLI)
    RCA_API_URL=http://rca:3000 RCA_API_TOKEN=... streamlit run dashboard/app.py   # the BentoML service

This file is layout only: data comes from ``dashboard.backend`` (in-process or HTTP, one interface), and the
report is turned into tables, links and the chart by ``dashboard.render``. Log text is untrusted: it is shown in
dataframes and code blocks, or escaped before it reaches Markdown; nothing is rendered as HTML.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts dashboard/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import streamlit as st  # noqa: E402

from dashboard import render  # noqa: E402
from dashboard.backend import Backend, Upload, from_env  # noqa: E402
from openstack_rca.errors import RCAError  # noqa: E402

log = logging.getLogger("openstack_rca.dashboard")
CORPUS, UPLOAD = "Ingested corpus", "Upload log files"
MODES = ("fast", "hybrid")

st.set_page_config(page_title="openstack-rca", page_icon=":material/troubleshoot:", layout="wide")


# -- plumbing -----------------------------------------------------------------------------------------------------
def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 400 else text[:399] + "…"


def attempt(what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Run a backend call; any failure becomes one readable line (the trace goes to the server log only)."""
    try:
        return fn(*args, **kwargs), None
    except RCAError as exc:  # BackendError, InvalidInput, InputNotFound, ModelNotReady...
        return None, f"{what}: {one_line(exc)}"
    except Exception as exc:  # noqa: BLE001 - the console shows a message, never a traceback
        log.exception("%s", what)
        return None, f"{what}: unexpected error ({type(exc).__name__}: {one_line(exc)})"


@st.cache_resource(show_spinner="Starting the RCA engine…")
def get_backend(url: str, token: str, home: str, config: str) -> Backend:
    """One backend per process and settings (the in-process engine loads its model once)."""
    return from_env()


@dataclass
class Source:
    label: str
    corpus: str | None = None
    uploads: list[Upload] = field(default_factory=list)
    problem: str | None = None  # why there is nothing to analyse yet


# -- sidebar --------------------------------------------------------------------------------------------------------
def sidebar(be: Backend) -> tuple[Source, str, int, bool]:
    with st.sidebar:
        st.title("openstack-rca", anchor=False)
        st.caption(render.escape_md(be.label))

        st.subheader("Model", anchor=False)
        if st.button("Refresh model", icon=":material/refresh:",
                     help="Load the model the registry alias points at now"):
            info, err = attempt("Model refresh failed", be.refresh_model)
            if err:
                st.error(render.escape_md(err))
            else:
                st.success(f"Model reloaded: version {render.escape_md(info.get('version'))}")
        with st.spinner("Loading the model…"):
            info, err = attempt("No model", be.model)
        if err:
            st.error(render.escape_md(err))
        else:
            st.markdown(f"**{render.escape_md(info.get('name'))}** · "
                        f"version **{render.escape_md(info.get('version'))}**")
            st.caption(render.escape_md(f"alias {info.get('alias')} · {info.get('source')} · loaded "
                                        f"{info.get('loaded_at')}"))

        st.subheader("Logs", anchor=False)
        corpora, err = attempt("Cannot list corpora", be.corpora)
        if err:
            st.error(render.escape_md(err))
        names = [c.get("name") for c in corpora or [] if c.get("name")]
        meta = {c.get("name"): c for c in corpora or []}
        kind = st.radio("Data", [CORPUS, UPLOAD], index=0 if names else 1, key="data_kind",
                        label_visibility="collapsed")
        if kind == CORPUS:
            chosen = st.session_state.get("corpus")
            if chosen and chosen not in names:
                # The chosen corpus went away (deleted, re-ingested elsewhere): keep it chosen and say so rather
                # than silently answering about another corpus.
                names = [*names, chosen]
                st.warning(render.escape_md(f"Corpus {chosen} is no longer listed; pick another one."))
            if names:
                name = st.selectbox("Corpus", names, key="corpus")
                m = meta.get(name, {})
                st.caption(render.escape_md(
                    f"{m.get('records', '?')} records · {'indexed' if m.get('indexed') else 'not indexed (fast only)'}"
                    f" · updated {m.get('updated', '?')}") if m else "not found")
                source = Source(f"corpus {name}", corpus=name)
            else:
                st.info("No corpus ingested yet: upload log files, or run `rca ingest PATH --corpus NAME`.")
                source = Source("no corpus", problem="No corpus is ingested yet: upload log files or ingest a "
                                                     "corpus first.")
        else:
            files = st.file_uploader("Log files", accept_multiple_files=True, key="uploads",
                                     help="File names are kept, so services are detected from them "
                                          "(nova-compute.log, libvirtd-compute-2.log...).")
            uploads = [Upload(f.name, f.getvalue()) for f in files or []]
            source = Source(f"{len(uploads)} uploaded file(s)", uploads=uploads,
                            problem=None if uploads else "Upload one or more log files first (or pick a corpus).")
            if uploads:
                with st.expander("Save the upload as a corpus"):
                    cname = st.text_input("Corpus name", key="ingest_name", placeholder="incident-1234")
                    index = st.checkbox("Build the semantic index (for hybrid mode)", value=True, key="ingest_index")
                    if st.button("Ingest", key="ingest_go", disabled=not cname):
                        with st.spinner("Parsing, scoring and indexing…"):
                            res, ierr = attempt("Ingest failed", be.ingest, cname.strip(), uploads, index=index)
                        if ierr:
                            st.error(render.escape_md(ierr))
                        else:
                            st.success(render.escape_md(f"Corpus {res.get('corpus')} ingested: "
                                                        f"{res.get('input', {}).get('records', '?')} records"))
                            for w in res.get("warnings") or []:
                                st.warning(render.escape_md(w))

        st.subheader("Analysis", anchor=False)
        mode = st.radio("Mode", MODES, index=1, key="mode", horizontal=True,
                        captions=["LSTM + TF-IDF", "+ semantic search"])
        top_k = st.slider("Evidence rows (top-k)", 1, 50, 10, key="top_k")
        narrate = st.checkbox("Narrative", value=True, key="narrate",
                              help="Claude when ANTHROPIC_API_KEY is set, else the offline narrative")
        if st.session_state.get("history") and st.button("Clear conversation", key="clear"):
            st.session_state["history"] = []
            st.rerun()
    return source, mode, top_k, narrate


# -- the conversation -----------------------------------------------------------------------------------------------
def summary_line(report: dict[str, Any]) -> str:
    rc = report.get("root_cause") or {}
    conf = float(rc.get("confidence") or 0.0)
    if render.is_no_evidence(report):
        return f"**No evidence found** for this issue in these logs (confidence {conf:.0%})."
    eid = rc.get("evidence_id")
    link = f" · [{eid}](#{render.anchor(eid)})" if eid else ""
    return (f"**Root cause:** {render.escape_md(rc.get('component'))} ({render.escape_md(rc.get('category'))}) · "
            f"confidence {conf:.0%}{link}")


def show_turn(turn: dict[str, Any]) -> None:
    with st.chat_message("user"):
        st.markdown(render.escape_md(turn["issue"]))
        st.caption(render.escape_md(f"{turn['data']} · {turn['mode']} mode"))
    with st.chat_message("assistant"):
        if turn.get("error"):
            st.error(render.escape_md(turn["error"]))
        else:
            st.markdown(summary_line(turn["report"]))


STEP_LABELS = {"startup": "start the process", "load": "load the model", "corpus": "load the corpus",
               "parse": "parse", "score": "score (LSTM)", "index": "index", "retrieve": "retrieve (semantic search)",
               "diagnose": "diagnose", "narrate": "narrate"}


def ask(be: Backend, issue: str, source: Source, mode: str, top_k: int, narrate: bool) -> dict[str, Any]:
    turn: dict[str, Any] = {"issue": issue, "data": source.label, "mode": mode, "report": None, "error": None}
    with st.chat_message("user"):
        st.markdown(render.escape_md(issue))
        st.caption(render.escape_md(f"{source.label} · {mode} mode"))
    with st.chat_message("assistant"):
        if source.problem:
            turn["error"] = source.problem
            st.error(render.escape_md(source.problem))
            return turn
        steps = (["parsing"] if source.uploads else []) + ["scoring"] + (["retrieving"] if mode == "hybrid" else []) \
            + ["diagnosing"] + (["narrating"] if narrate else [])
        with st.status(f"Analysing {source.label} ({mode} mode)…", expanded=True) as status:
            st.write("Steps: " + " → ".join(steps) + " …")
            report, err = attempt("Analysis failed", be.analyze, issue, corpus=source.corpus,
                                  uploads=source.uploads or None, mode=mode, top_k=top_k, narrate=narrate)
            if err:
                status.update(label="Analysis failed", state="error", expanded=False)
            else:
                t = report.get("timings_ms") or {}
                for k, label in STEP_LABELS.items():
                    if k in t:
                        st.write(f"✓ {label}: {t[k]:.0f} ms")
                status.update(label=f"Analysis complete in {t.get('total', 0):.0f} ms", state="complete",
                              expanded=False)
        if err:
            turn["error"] = err
            st.error(render.escape_md(err))
        else:
            turn["report"] = report
            st.markdown(summary_line(report))
    return turn


# -- the report -----------------------------------------------------------------------------------------------------
def root_cause_card(report: dict[str, Any]) -> None:
    """What an SRE reads first: the cause, the line that states it, where in the code, who logged it on which
    host, the warnings that qualify it (an unfamiliar model, another host than the issue's) and the chain."""
    rc = report.get("root_cause") or {}
    conf = max(0.0, min(1.0, float(rc.get("confidence") or 0.0)))
    aff = report.get("affected") or {}
    with st.container(border=True, key="root_cause_card"):
        if render.is_no_evidence(report):
            st.subheader("No evidence found", anchor="root-cause")
            c1, c2 = st.columns([1, 3])
            c1.metric("Confidence", f"{conf:.0%}")
            with c2:
                st.markdown(render.escape_md(rc.get("summary") or "No incident in these logs matches the issue."))
                st.progress(conf, text="confidence (below 30%: no guess)")
            st.caption("Check that the logs cover the right hosts and time window, or describe the symptom "
                       "differently.")
            show_warnings(report)
            return
        st.subheader("Root cause", anchor="root-cause")
        c1, c2, c3, c4 = st.columns(4)
        c1.metric("Component", str(rc.get("component")))
        c2.metric("Category", str(rc.get("category") or "uncategorised"))
        c3.metric("Confidence", f"{conf:.0%}")
        c4.metric("Onset (UTC)", render.short_time(report.get("onset") or rc.get("first_seen"))[11:19] or "—")
        st.progress(conf, text=f"confidence {conf:.2f}")
        cause_quote(rc)
        show_warnings(report)
        chain = render.chain_frame(report)
        if not chain.empty:
            st.markdown("**Chain**: from the root cause to what the user saw (▶ the root cause)")
            st.table(chain, hide_index=True, border="horizontal")
        st.caption(render.escape_md(
            f"Affected: {len(aff.get('instances') or [])} instance(s), {len(aff.get('requests') or [])} request(s); "
            f"services: {', '.join(aff.get('services') or []) or '—'}"))


def cause_quote(rc: dict[str, Any]) -> None:
    """The line that states the cause (a code block: it is log text), where in the code, and who logged it."""
    eid = rc.get("evidence_id")
    link = f" · [{eid}](#{render.anchor(eid)})" if eid else ""
    st.markdown(f"**The line that states the cause**{link}")
    st.code(str(rc.get("quote") or rc.get("summary") or ""), language=None, wrap_lines=True)
    where = render.code_location(rc.get("code"))
    if where:
        st.markdown(f"**Code:** {render.escape_md(where)}")
    host = f"on **{render.escape_md(rc['host'])}**" if rc.get("host") else "on a host the logs do not name"
    mismatch = " — not the host the issue names" if rc.get("host_matches") is False else ""
    st.markdown(f"**Logged by** {render.escape_md(rc.get('service') or '?')} {host}{mismatch}")


def show_warnings(report: dict[str, Any]) -> None:
    """On the card, not above it: they qualify the answer (an unfamiliar model, another host than the issue's)."""
    for w in render.card_warnings(report):
        st.warning(render.escape_md(w), icon=":material/warning:")


def timeline(report: dict[str, Any]) -> None:
    st.subheader("Unexpected events per minute", anchor="timeline")
    chart = render.timeline_chart(report)
    if chart is None:
        st.info("No timestamped records to plot.")
        return
    st.altair_chart(chart, width="stretch", key="timeline_chart")
    st.caption("Warnings and errors that are not routine housekeeping, per minute and service. In colour: the "
               "services the report points at; in grey: the others. The dashed rule marks the root cause (or the "
               "first symptom).")


def narrative(report: dict[str, Any], ids: list[str]) -> None:
    st.subheader("Narrative", anchor="narrative")
    n = report.get("narrative")
    if not n:
        st.info("Narrative not requested.")
        return
    st.markdown(render.link_citations(n.get("text") or "", ids))
    cites = [c for c in n.get("citations") or [] if c in ids]
    src = n.get("source") or "?"
    st.caption(f"source: **{render.escape_md(src)}**"
               + (" (deterministic, built from the report)" if src == "offline" else "")
               + (" · cites " + ", ".join(f"[{c}](#{render.anchor(c)})" for c in cites) if cites else ""))
    if n.get("warning"):
        st.warning(render.escape_md(f"Narrative: {n['warning']}"))


def evidence_table(report: dict[str, Any], key: str) -> dict[str, Any] | None:
    ev = report.get("evidence") or []
    st.subheader("Evidence", anchor="evidence")
    if not ev:
        st.info("No evidence: the logs held no suspicious records.")
        return None
    df = render.evidence_frame(ev)
    cfg: dict[str, Any] = {
        "id": st.column_config.TextColumn("id", width=40, pinned=True),
        "text": st.column_config.TextColumn("text", width=520, help="the log line (the full record: select the row)"),
        "host": st.column_config.TextColumn("host", width=95),
        "service": st.column_config.TextColumn("service", width=135),
        "level": st.column_config.TextColumn("level", width=80),
        "time": st.column_config.TextColumn("time (UTC)", width=105),
        "count": st.column_config.NumberColumn("count", format="%d", width=55),
        "role": st.column_config.TextColumn("role", width=95),
    }
    event = st.dataframe(df, key=key, on_select="rerun", selection_mode="single-row", hide_index=True,
                         column_config=cfg, width="stretch")
    rows = list(getattr(getattr(event, "selection", None), "rows", []) or [])
    if rows and 0 <= rows[0] < len(ev):
        return ev[rows[0]]
    st.caption("Select a row to see the raw record, its neighbours and its signal scores; the root cause's record "
               "is shown.")
    rc_id = (report.get("root_cause") or {}).get("evidence_id")
    return next((e for e in ev if e.get("id") == rc_id), ev[0])


def evidence_record(ev: dict[str, Any]) -> None:
    st.markdown(f"**{render.escape_md(ev.get('id'))}** · {render.escape_md(ev.get('service'))} · "
                f"{render.escape_md(ev.get('host') or 'no host')} · {render.escape_md(ev.get('level'))} · "
                f"{render.escape_md(render.short_time(ev.get('timestamp')))} · ×{render.escape_md(ev.get('count'))}"
                f" · score {float(ev.get('score') or 0):.2f}")
    st.caption(render.escape_md(f"{ev.get('source')}, line {ev.get('line_no')}"))
    st.code(str(ev.get("text") or ""), language=None, wrap_lines=True)
    st.dataframe(render.highlight_self(render.context_frame(ev)), hide_index=True, width="stretch",
                 column_config={"line": st.column_config.TextColumn("line", width="small"),
                                "level": st.column_config.TextColumn("level", width="small"),
                                "text": st.column_config.TextColumn("text", width="large")})
    with st.expander("Signal scores, template and what the model expected"):
        st.table(render.signals_frame(ev), hide_index=True, border="horizontal")
        st.code(str(ev.get("template") or ""), language=None, wrap_lines=True)
        if ev.get("expected"):
            st.caption("The model expected one of:")
            st.code("\n".join(map(str, ev["expected"])), language=None, wrap_lines=True)
        st.caption(render.escape_md(f"first seen {ev.get('first_seen')} · last seen {ev.get('last_seen')}"))


def evidence_details(report: dict[str, Any]) -> None:
    """One anchored section per evidence item: the narrative's [E3] links land here."""
    st.subheader("Evidence details", anchor="evidence-details")
    for ev in report.get("evidence") or []:
        eid = str(ev.get("id"))
        st.subheader(f"{render.escape_md(eid)} · {render.escape_md(ev.get('service'))} · "
                     f"{render.escape_md(ev.get('level'))}", anchor=render.anchor(eid))
        st.caption(render.escape_md(f"{ev.get('source')}:{ev.get('line_no')} · {render.short_time(ev.get('timestamp'))}"
                                    f" · ×{ev.get('count')} · score {float(ev.get('score') or 0):.2f}"))
        st.code(str(ev.get("text") or ""), language=None, wrap_lines=True)
        with st.expander("Neighbouring lines"):
            st.code(render.context_block(ev), language=None)


def show_report(report: dict[str, Any], n: int) -> None:
    st.divider()
    root_cause_card(report)  # the report's warnings are on the card
    m = report.get("model") or {}
    src = report.get("source") or {}
    total_ms = (report.get("timings_ms") or {}).get("total", 0)
    st.caption(render.escape_md(
        f"mode {report.get('mode')} (asked {report.get('requested_mode')}) · model {m.get('name')} "
        f"v{m.get('version')} ({m.get('source')}) · {src.get('records', '?')} records · {total_ms:.0f} ms"))
    left, right = st.columns([3, 2], gap="large")
    with left:
        timeline(report)
    ids = [str(e.get("id")) for e in report.get("evidence") or []]
    with right:
        narrative(report, ids)
    selected = evidence_table(report, key=f"evidence_table_{n}")
    if selected is not None:
        st.subheader("Selected record and its neighbours", anchor="selected")
        evidence_record(selected)
    with st.expander("Timeline of events"):
        st.dataframe(render.timeline_frame(report), hide_index=True, width="stretch")
    aff = report.get("affected") or {}
    with st.expander(f"Affected: {len(aff.get('instances') or [])} instance(s), "
                     f"{len(aff.get('requests') or [])} request(s)"):
        st.code("\n".join(["instances:", *aff.get("instances", []), "", "requests:", *aff.get("requests", []),
                           "", "services:", *aff.get("services", [])]), language=None)
    evidence_details(report)


# -- the page -------------------------------------------------------------------------------------------------------
def main() -> None:
    try:
        be = get_backend(os.environ.get("RCA_API_URL", ""), os.environ.get("RCA_API_TOKEN", ""),
                         os.environ.get("RCA_HOME", ""), os.environ.get("RCA_CONFIG", ""))
    except Exception as exc:  # noqa: BLE001 - e.g. a bad config value: say so, do not show a trace
        st.error(render.escape_md(f"Cannot start the RCA backend: {one_line(exc)}"))
        st.stop()
    source, mode, top_k, narrate = sidebar(be)

    st.title("OpenStack root-cause analysis", anchor=False)
    st.caption("Describe what operators see; the engine ranks evidence from the logs, names the component at "
               "fault and explains it with citations.")
    history: list[dict[str, Any]] = st.session_state.setdefault("history", [])
    issue = st.chat_input("Describe the issue, e.g. “instances fail to boot on compute-2”", key="issue")
    for turn in history:
        show_turn(turn)
    if issue is not None:
        history.append(ask(be, str(issue), source, mode, top_k, narrate))
    elif not history:
        st.info("Pick an ingested corpus or upload log files in the sidebar, then describe the issue below.")
    if history and history[-1].get("report"):
        try:
            show_report(history[-1]["report"], len(history))
        except Exception as exc:  # noqa: BLE001 - a malformed report must not show a traceback
            log.exception("rendering the report")
            st.error(render.escape_md(f"Cannot display the report: {type(exc).__name__}: {one_line(exc)}"))


try:
    main()
except Exception as exc:  # noqa: BLE001 - last resort: one line on the page, the trace in the server log only
    log.exception("dashboard")
    st.error(render.escape_md(f"Unexpected error: {type(exc).__name__}: {one_line(exc)}"))
