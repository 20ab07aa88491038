"""The Streamlit RCA console (dashboard/): its flows under Streamlit's AppTest, its HTTP backend against a stub
service, and one end-to-end run in a real browser (Chromium driven by Playwright) that also takes the screenshot.

The model is the session's `trained` one; a simulated libvirt incident is ingested once as corpus
"dash-incident" (no semantic index: the tests use fast mode).
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from openstack_rca import simulate
from openstack_rca.analyze import Analyzer

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "dashboard" / "app.py"
CORPUS = "dash-incident"
ISSUE = "instances fail to boot on compute-2"
UNRELATED = "the office printer on floor 3 is out of toner"
TOKEN = "dash-test-token"
# Read at import: conftest's autouse fixture clears every other RCA_* variable before each test runs.
ARTIFACTS = Path(os.environ.get("RCA_TEST_ARTIFACTS") or ROOT / "test-artifacts")
UPDATE_SCREENSHOT = os.environ.get("RCA_UPDATE_SCREENSHOT") == "1"


def plain(text: str) -> str:
    """Markdown-escaped text as the operator reads it."""
    return str(text).replace("\\", "")


@pytest.fixture(scope="module")
def incident(trained, tmp_path_factory):
    """The simulated incident, ingested as a corpus in the trained home, and the engine's own report on it."""
    cfg, loaded = trained
    logs = tmp_path_factory.mktemp("dash-incident-logs")
    simulate.simulate("libvirt_domain_failure", logs, lines=3000, seed=3)
    analyzer = Analyzer(cfg, loaded=loaded)
    analyzer.ingest([logs], CORPUS, index=False)
    report = analyzer.analyze(ISSUE, corpus=CORPUS, mode="fast")
    assert report["root_cause"]["component"] == "libvirt"  # the premise of the UI tests below
    return SimpleNamespace(cfg=cfg, loaded=loaded, logs=logs, report=json.loads(json.dumps(report, default=str)))


@pytest.fixture
def app_env(incident, monkeypatch):
    monkeypatch.setenv("RCA_HOME", str(incident.cfg.home))
    for key in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "RCA_API_URL", "RCA_API_TOKEN"):
        monkeypatch.delenv(key, raising=False)  # the offline narrative, the in-process engine
    return incident


def new_app():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def ask(at, issue: str, mode: str = "fast"):
    at.radio(key="mode").set_value(mode)
    at.chat_input(key="issue").set_value(issue)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def errors(at) -> list[str]:
    return [plain(e.value) for e in at.error]


# -- pure rendering -------------------------------------------------------------------------------------------------
def test_log_text_is_escaped_and_citations_link_to_evidence():
    from dashboard import render

    hostile = "<script>alert(1)</script> **bold** [x](javascript:alert(1)) `code` # head :red[big] $x$"
    out = render.escape_md(hostile)
    for token in ("<script>", "**", "[x](", "`code`", ":red[", "$x$"):
        assert token not in out, token
    assert plain(out) == hostile  # nothing lost, only escaped

    text = "Look at [E1] then [E3] and [E99]; see [x](javascript:alert(1))."
    linked = render.link_citations(text, ["E1", "E2", "E3"])
    assert "[E1](#evidence-e1)" in linked and "[E3](#evidence-e3)" in linked
    assert "(#evidence-e99)" not in linked and "\\[E99\\]" in linked  # unknown ids stay plain text
    assert "](javascript" not in linked

    # uploaded file names are kept, but only as a base name in the upload folder
    from dashboard.backend import _safe_name

    taken: set[str] = set()
    assert [_safe_name(n, taken) for n in ("../../etc/passwd", "nova.log", "a/b/nova.log", ".hidden", "x y.log")] \
        == ["passwd", "nova.log", "nova-2.log", "hidden", "x_y.log"]

    # No HTML path anywhere in the dashboard: log text never goes through unsafe_allow_html or st.html.
    for src in (ROOT / "dashboard").glob("*.py"):
        code = src.read_text()
        assert "unsafe_allow_html=True" not in code and "st.html(" not in code, src


def test_evidence_table_leads_with_text_host_and_service_and_signals_move_to_details():
    from dashboard import render

    from .sample_report import sample_report

    rep = sample_report()
    df = render.evidence_frame(rep["evidence"])
    assert list(df.columns) == ["id", "text", "host", "service", "level", "time", "count", "role", "source"]
    assert not set(render.SIGNALS) & set(df.columns) and "score" not in df.columns
    assert list(df["host"]) == ["controller-1", "controller-1", "—"]
    assert list(df["role"]) == ["root cause", "same failure", "symptom"]
    assert list(df["time"]) == ["09:38:41.205", "09:38:42.205", "09:38:43.205"]  # one day: the clock only
    assert render.clock_times(["2026-11-23T23:59:59.5+00:00", "2026-11-24T00:00:01+00:00"]) == \
        ["2026-11-23 23:59:59.5", "2026-11-24 00:00:01"]

    sig = render.signals_frame(rep["evidence"][0])
    assert list(sig["signal"]) == ["score", "severity", "lexical", "relevance", "lstm", "novelty", "model_weight",
                                   "onset"]
    assert sig.set_index("signal").loc["lexical", "value"] == 0.41 and all(sig["meaning"])
    assert "tfidf" not in render.SIGNALS and "lexical" in render.SIGNALS


def test_root_cause_card_parts():
    from dashboard import render

    from .sample_report import API, HOST_MISMATCH, QUOTE, UNFAMILIAR, sample_report

    rep = sample_report()
    assert render.code_location(rep["root_cause"]["code"]) == \
        "cinder/scheduler/filter_scheduler.py:_choose_top_backend line 304 (TypeError)"
    assert render.code_location(None) is None
    assert render.card_warnings(rep) == [UNFAMILIAR, HOST_MISMATCH]  # the root cause's first, each once
    chain = render.chain_frame(rep)
    assert list(chain[""]) == ["▶", ""] and list(chain["api"]) == ["", API]
    assert chain["text"][0] == QUOTE and list(chain["time"]) == ["09:38:41.205", "09:38:42.500"]
    rep["root_cause"]["chain"][1]["api"] = None
    assert "api" not in render.chain_frame(rep).columns  # no failed API call: no empty column
    rep["root_cause"] = {"component": None, "confidence": 0.1, "summary": "No evidence found: x."}
    assert render.chain_frame(rep).empty


def test_timeline_plots_the_rate_of_unexpected_events():
    from dashboard import render

    from .sample_report import sample_report

    rep = sample_report()
    data = render.series_frame(rep["series"])
    assert set(data.columns) >= {"time", "service", "rate"}
    assert data["rate"].max() == 42.0  # a rate, not clipped to 0..1
    spec = render.timeline_chart(rep).to_dict()
    ys = [layer["encoding"]["y"] for layer in spec["layer"] if "field" in layer["encoding"].get("y", {})]
    assert ys and all(y["field"] == "rate" and y["title"] == "unexpected events per minute" for y in ys)
    assert all("domain" not in y.get("scale", {}) for y in ys)
    assert render.series_frame({}).empty and render.timeline_chart({**rep, "series": {}}) is None


def test_streamlit_toolbar_hides_the_deploy_button():
    """Streamlit reads dashboard/.streamlit/config.toml (next to the script) from any working directory."""
    import tomllib

    conf = tomllib.loads((APP.parent / ".streamlit" / "config.toml").read_text())
    assert conf["client"]["toolbarMode"] == "viewer"


# -- AppTest flows --------------------------------------------------------------------------------------------------
def test_corpus_issue_shows_root_cause_evidence_timeline_and_narrative(app_env):
    at = new_app()
    assert CORPUS in at.selectbox(key="corpus").options
    at.selectbox(key="corpus").set_value(CORPUS).run()
    ask(at, ISSUE)
    assert not at.error, errors(at)

    m = metrics(at)
    assert m["Component"] == "libvirt" and m["Category"] == "compute"
    assert float(m["Confidence"].rstrip("%")) >= 30
    assert "Root cause" in [h.value for h in at.subheader]
    assert not at.warning, [w.value for w in at.warning]

    # the evidence table: one row per evidence item, the log text first; the signals are in the row's detail
    from dashboard import render

    table = at.dataframe[0].value
    assert list(table["id"])[:3] == ["E1", "E2", "E3"]
    assert list(table.columns) == render.EVIDENCE_COLUMNS and not set(render.SIGNALS) & set(table.columns)

    # the timeline: one Altair chart, lines per service and the root cause marked
    charts = at.get("vega_lite_chart")
    assert len(charts) == 1
    spec = json.loads(charts[0].proto.spec)
    marks = [layer["mark"]["type"] for layer in spec["layer"]]
    assert marks.count("line") >= 1 and "rule" in marks and "text" in marks
    assert "root cause: libvirt" in str(charts[0].proto)  # the rule's label, in the chart's data

    # the narrative cites E1 with a link to E1's anchored detail
    md = [m.value for m in at.markdown]
    ids = [e["id"] for e in app_env.report["evidence"]]
    told = render.link_citations(app_env.report["narrative"]["text"], ids)
    assert told in md and "[E1](#evidence-e1)" in told
    assert any("source: **offline**" in c.value for c in at.caption)
    anchors = {h.proto.anchor for h in at.subheader}
    assert {"evidence-e1", "evidence-e2", "evidence-e3"} <= anchors

    # no row selected: the root cause's record; selecting row 3 shows E3's record and its neighbours
    assert any(plain(v).startswith("**E1** · libvirtd") for v in md)
    at.session_state["evidence_table_1"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    md = [plain(m.value) for m in at.markdown]
    assert any(v.startswith("**E3** ·") for v in md)
    context = at.dataframe[1].value
    assert context["line"].str.startswith("▶").sum() == 1  # the selected line, marked among its neighbours

    # the conversation keeps both turns' question and answer
    ask(at, UNRELATED)
    assert [plain(c.markdown[0].value) for c in at.chat_message if c.name == "user"] == [ISSUE, UNRELATED]
    assert "No evidence found" in [h.value for h in at.subheader]
    assert "Component" not in metrics(at)
    assert float(metrics(at)["Confidence"].rstrip("%")) < 30


def test_uploaded_files_are_analysed_with_their_names(app_env):
    logs = app_env.logs
    at = new_app()
    at.radio(key="data_kind").set_value("Upload log files").run()
    files = [("libvirtd-compute-2.log", (logs / "libvirt" / "libvirtd-compute-2.log").read_bytes(), "text/plain"),
             ("nova-compute-compute-2.log", (logs / "nova" / "nova-compute-compute-2.log").read_bytes(),
              "text/plain")]
    at.file_uploader(key="uploads").set_value(files).run()
    ask(at, ISSUE)
    assert not at.error, errors(at)
    assert metrics(at)["Component"] == "libvirt"
    services = set(at.dataframe[0].value["service"])
    assert {"libvirtd", "nova-compute"} & services  # services came from the file names

    # the same upload saved as a corpus (no semantic index: fast), then offered in the corpus list
    at.text_input(key="ingest_name").set_value("dash-upload")
    at.checkbox(key="ingest_index").set_value(False)
    at.run()
    at.button(key="ingest_go").click().run()
    assert not at.exception and not at.error, errors(at)
    assert any("Corpus dash-upload ingested" in plain(s.value) for s in at.success)
    at.radio(key="data_kind").set_value("Ingested corpus").run()
    assert "dash-upload" in at.selectbox(key="corpus").options


def test_errors_are_one_line_messages_not_tracebacks(app_env, monkeypatch):
    cfg, logs = app_env.cfg, app_env.logs
    at = new_app()

    ask(at, "x" * 2500)  # bad input: the engine refuses it
    assert any("2500 characters" in e and "2000" in e for e in errors(at)), errors(at)

    at.radio(key="data_kind").set_value("Upload log files").run()
    ask(at, ISSUE)  # nothing to analyse
    assert any("Upload one or more log files" in e for e in errors(at)), errors(at)
    at.radio(key="data_kind").set_value("Ingested corpus").run()

    # a corpus that disappears after it was chosen: an error about that corpus, not an answer about another
    Analyzer(cfg, loaded=app_env.loaded).ingest([logs / "libvirt"], "dash-gone", index=False)
    at.run()
    at.selectbox(key="corpus").set_value("dash-gone").run()
    shutil.rmtree(cfg.corpora_dir / "dash-gone")
    ask(at, ISSUE)
    assert any("no corpus named 'dash-gone'" in e for e in errors(at)), errors(at)
    assert "Component" not in metrics(at)

    def boom(self, *a, **k):
        raise RuntimeError("scorer exploded")

    monkeypatch.setattr(Analyzer, "analyze", boom)
    at.selectbox(key="corpus").set_value(CORPUS).run()
    ask(at, ISSUE)
    last = errors(at)[-1]
    assert "unexpected error" in last and "RuntimeError" in last and "scorer exploded" in last
    assert "\n" not in last and "Traceback" not in last
    assert not at.exception


def test_refresh_model_button(app_env):
    at = new_app()
    assert any("openstack-rca-lstm" in plain(m.value) for m in at.sidebar.markdown)
    at.sidebar.button[0].click().run()
    assert not at.exception and not at.error, errors(at)
    assert any("Model reloaded: version 1" in plain(s.value) for s in at.success)


# -- the HTTP backend -----------------------------------------------------------------------------------------------
class _Stub(BaseHTTPRequestHandler):
    """A stand-in for the BentoML service's HTTP API: bearer auth, GET /model, GET /corpora, POST /analyze."""

    def log_message(self, *args):  # keep pytest output clean
        pass

    def _send(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._send(401, {"error": "missing or invalid bearer token"})
        return False

    def do_GET(self):
        if not self._authorised():
            return
        if self.path == "/model":
            self._send(200, {"name": "openstack-rca-lstm", "version": "7", "alias": "champion", "source": "registry",
                             "loaded_at": "2026-11-26T00:00:00+00:00"})
        elif self.path == "/corpora":
            self._send(200, {"corpora": [{"name": CORPUS, "records": 2805, "indexed": False}]})
        else:
            self._send(404, {"error": "not found"})

    def do_POST(self):
        if not self._authorised():
            return
        body = json.loads(self.rfile.read(int(self.headers.get("content-length") or 0)) or b"null")
        self.server.requests.append((self.path, body))
        if self.path == "/analyze" and body.get("corpus") == "missing":
            self._send(404, {"error": "no corpus named 'missing' (ingested: dash-incident)"})
        elif self.path == "/analyze":
            self._send(200, self.server.report)
        else:
            self._send(404, {"error": "not found"})


@contextlib.contextmanager
def _serve(report: dict):
    """The stub service answering every /analyze with ``report``: ``(server, url)``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    server.requests, server.report = [], report
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def stub_service(app_env):
    with _serve(app_env.report) as served:
        yield served


@pytest.fixture
def crafted_service(monkeypatch):
    """The console on the HTTP backend, answering with the hand-made report (no model needed)."""
    from .sample_report import sample_report

    with _serve(sample_report()) as (server, url):
        monkeypatch.setenv("RCA_API_URL", url)
        monkeypatch.setenv("RCA_API_TOKEN", TOKEN)
        yield server


def test_root_cause_card_on_a_crafted_report(crafted_service):
    """The card leads with the quote, the code location, the host (and that it is not the issue's), the
    unfamiliar-model and host warnings, and the chain; the evidence table with the text; signals per row."""
    from dashboard import render

    from .sample_report import API, CHAIN_TEXT, HOST_MISMATCH, QUOTE, UNFAMILIAR

    at = ask(new_app(), ISSUE)
    assert not at.error, errors(at)
    m = metrics(at)
    assert m["Component"] == "cinder" and m["Category"] == "scheduling" and m["Confidence"] == "82%"
    assert at.code[0].value == QUOTE
    md = [plain(x.value) for x in at.markdown]
    assert "**Code:** cinder/scheduler/filter_scheduler.py:_choose_top_backend line 304 (TypeError)" in md
    assert "**Logged by** cinder-scheduler on **controller-1** — not the host the issue names" in md
    assert [plain(w.value) for w in at.warning] == [UNFAMILIAR, HOST_MISMATCH]  # on the card, each once

    chain = at.table[0].value
    assert list(chain["text"]) == [QUOTE, CHAIN_TEXT] and list(chain["api"]) == ["", API]
    assert list(chain[""]) == ["▶", ""]

    table = at.dataframe[0].value
    assert list(table.columns) == render.EVIDENCE_COLUMNS and list(table["id"]) == ["E1", "E2", "E3"]
    signals = at.table[1].value  # the selected (root-cause) row's detail
    assert list(signals["signal"])[:3] == ["score", "severity", "lexical"]

    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert "unexpected events per minute" in json.dumps(spec) and "1.15" not in json.dumps(spec)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_http_backend_against_the_service_api(stub_service, monkeypatch):
    from dashboard.backend import BackendError, HTTPBackend, Upload

    server, url = stub_service
    be = HTTPBackend(url, TOKEN, timeout_s=10)
    assert be.model()["version"] == "7" and be.refresh_model()["version"] == "7"
    assert [c["name"] for c in be.corpora()] == [CORPUS]
    uploads = [Upload("nova.log", b"line one\n"), Upload("libvirtd.log.gz", gzip.compress(b"two"))]
    rep = be.analyze(ISSUE, uploads=uploads, mode="fast", top_k=5)
    assert rep["root_cause"]["component"] == "libvirt"
    path, body = server.requests[-1]
    assert path == "/analyze" and body == {"issue": ISSUE, "mode": "fast", "top_k": 5, "narrate": True,
                                           "logs": "line one\ntwo\n"}
    with pytest.raises(BackendError, match=r"404 on /analyze: no corpus named 'missing'"):
        be.analyze(ISSUE, corpus="missing")
    with pytest.raises(BackendError, match=r"401.*RCA_API_TOKEN"):
        HTTPBackend(url, "wrong", timeout_s=10).model()
    with pytest.raises(BackendError, match="cannot reach"):
        HTTPBackend(f"http://127.0.0.1:{_free_port()}", TOKEN, timeout_s=5).model()

    # the console on the HTTP backend: same report, same card
    monkeypatch.setenv("RCA_API_URL", url)
    monkeypatch.setenv("RCA_API_TOKEN", TOKEN)
    at = new_app()
    assert any("HTTP service at" in plain(c.value) for c in at.sidebar.caption)
    ask(at, ISSUE)
    assert not at.error, errors(at)
    assert metrics(at)["Component"] == "libvirt"
    assert server.requests[-1] == ("/analyze", {"issue": ISSUE, "mode": "fast", "top_k": 10, "narrate": True,
                                                "corpus": CORPUS})


# -- end to end in a real browser -----------------------------------------------------------------------------------
def _chromium() -> str | None:
    for cand in (os.environ.get("RCA_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and Path(cand).is_file():
            return cand
    return None


@pytest.fixture
def streamlit_server(app_env, tmp_path):
    cfg = app_env.cfg
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "RCA_API_"))}
    env.update(RCA_HOME=str(cfg.home), PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TF_CPP_MIN_LOG_LEVEL="2")
    log = tmp_path / "streamlit.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited ({proc.returncode}): {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit did not answer within 90 s: {log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)


_PAGE_HEIGHT = """() => {
  let h = document.documentElement.scrollHeight;
  for (const el of document.querySelectorAll('*')) {
    if (el.scrollHeight > el.clientHeight + 2 && /auto|scroll/.test(getComputedStyle(el).overflowY))
      h = Math.max(h, el.scrollHeight);
  }
  return h;
}"""


def _full_page_screenshot(page, path: Path, width: int = 1500) -> None:
    """Streamlit scrolls inside its main container, so a plain full_page shot is one screen: grow the viewport
    to the content's height first (a few passes: charts re-lay out as the page widens), then shoot from the top."""
    last = 0
    for _ in range(5):
        h = int(page.evaluate(_PAGE_HEIGHT))
        if abs(h - last) < 5:
            break
        last = h
        page.set_viewport_size({"width": width, "height": min(h + 40, 16000)})
        page.wait_for_timeout(700)
    page.evaluate("() => { for (const el of document.querySelectorAll('*')) if (el.scrollTop) el.scrollTop = 0;"
                  " window.scrollTo(0, 0); }")
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)


def test_browser_end_to_end(streamlit_server):
    pw = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no Chromium found (/usr/bin/chromium; `apt-get install chromium`, or set RCA_CHROMIUM)")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "dashboard.png"

    with pw.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--no-first-run"])
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.set_default_timeout(120_000)
            page.goto(streamlit_server)
            # the corpus, then fast mode (each a rerun), then the issue in the chat box
            page.locator('[data-testid="stSelectbox"]').first.click()
            page.get_by_role("option", name=CORPUS).click()
            page.locator('[data-testid="stRadio"]').filter(has_text="hybrid").get_by_text("fast", exact=True).click()
            box = page.locator('[data-testid="stChatInputTextArea"]')
            box.fill(ISSUE)
            box.press("Enter")

            card = page.locator('[data-testid="stMetricValue"]', has_text="libvirt")
            card.wait_for()
            chart = page.locator('[data-testid="stVegaLiteChart"]').locator("canvas, svg").first
            chart.wait_for()
            assert card.count() == 1
            assert page.locator('[data-testid="stMetricValue"]', has_text="compute").count() >= 1
            assert chart.bounding_box()["height"] > 100  # the plot is drawn, not an empty box
            # the narrative's citations link to anchored evidence details
            assert page.locator('a[href="#evidence-e1"]').count() >= 1
            assert page.locator("#evidence-e1").count() == 1
            # the card quotes the line that states the cause
            assert page.locator('.st-key-root_cause_card [data-testid="stCode"]').count() >= 1
            # an operator's console, not a development server: no Deploy button (dashboard/.streamlit/config.toml)
            assert page.locator('[data-testid="stToolbar"]').count() == 1  # the toolbar is there, without it
            assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
            assert page.get_by_role("button", name="Deploy").count() == 0
            assert page.get_by_text("Deploy", exact=True).count() == 0
            page.wait_for_timeout(1000)  # let the chart finish its first paint
            _full_page_screenshot(page, shot)
        finally:
            browser.close()

    assert shot.stat().st_size > 20_000
    if UPDATE_SCREENSHOT:  # only on request, so CI never modifies a tracked file
        _save_docs_copy(shot, ROOT / "docs" / "dashboard.png")


def _save_docs_copy(shot: Path, dest: Path) -> None:
    """The tracked copy, in 256 colours (a UI screenshot loses nothing visible; the file is ~2.5x smaller)."""
    try:
        from PIL import Image

        with Image.open(shot) as im:
            im.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
                dest, optimize=True)
    except Exception:  # noqa: BLE001 - no Pillow, or it failed: the screenshot as taken
        shutil.copyfile(shot, dest)
