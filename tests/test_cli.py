"""The ``rca`` command as an operator uses it: real subprocesses, real exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from .helpers import INST, REQ, write

LINES = [
    "not a log line",  # before any record: unparsed (after one, a header-less line continues that record's message)
    f"2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [{REQ} - - - - -] [instance: {INST}] Claim successful on node compute-1",
    "2026-11-23 10:00:01.500 4242 ERROR nova.compute.manager [-] Instance failed to spawn",
    "2026-11-23 10:00:01.500 4242 ERROR nova.compute.manager [-] Traceback (most recent call last):",
    "2026-11-23 10:00:01.500 4242 ERROR nova.compute.manager [-] nova.exception.InstanceDeployFailure: boom",
    "",
]


def rca(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "openstack_rca", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_parse_json_one_object_per_record_in_input_order(tmp_path):
    p = write(tmp_path / "nova-compute.log", "\n".join(LINES) + "\n")
    res = rca("parse", str(p), "--json")
    assert res.returncode == 0, res.stderr
    objs = [json.loads(line) for line in res.stdout.splitlines()]
    assert [o["line_no"] for o in objs] == [1, 2, 3]
    required = {"source", "line_no", "timestamp", "level", "component", "service", "request_id", "instance_id",
                "message", "template_id", "template", "params", "raw"}
    assert all(required <= o.keys() for o in objs)
    assert objs[1]["instance_id"] == INST and objs[1]["service"] == "nova-compute"
    assert objs[2]["line_end"] == 5 and objs[2]["exception"] == "nova.exception.InstanceDeployFailure: boom"
    assert objs[0]["parsed"] is False
    assert "6 lines -> 3 records" in res.stderr


def test_parse_summary_human_and_json(tmp_path):
    p = write(tmp_path / "nova-compute.log", "\n".join(LINES) + "\n")
    human = rca("parse", str(p))
    assert human.returncode == 0 and "nova-compute" in human.stdout and "Instance failed to spawn" in human.stdout
    assert "[instance: <*>] Claim successful" not in human.stdout  # INFO lines are not in the error table

    res = rca("parse", str(p), "--json", "--summary")
    summary = json.loads(res.stdout)
    assert summary["totals"]["lines"] == 6 and summary["totals"]["records"] == 3
    assert summary["overview"]["services"][0]["errors"] == 1
    assert summary["overview"]["top_error_templates"][0]["template"] == "Instance failed to spawn"


def test_log_text_is_never_rich_markup(tmp_path):
    line = "2026-11-23 10:00:01.500 4242 ERROR nova.compute.manager [-] [instance: 6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f] [bold red]boom[/] [link=http://x]y"
    p = write(tmp_path / "nova-compute.log", line + "\n")
    human = rca("parse", str(p))
    assert "[instance: <*>] [bold red]boom[<*>] [link=<*>]y" in human.stdout


def test_missing_path_exits_2_with_one_line(tmp_path):
    res = rca("parse", str(tmp_path / "nope.log"))
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "path not found" in res.stderr and "nope.log" in res.stderr
    assert res.stdout == ""


def test_bad_config_exits_2(tmp_path):
    res = rca("parse", str(tmp_path), env_extra={"RCA_PARSE_WORKERS": "lots"})
    assert res.returncode == 2 and "RCA_PARSE_WORKERS" in res.stderr and res.stderr.count("\n") == 1


def test_cache_info_and_clear(tmp_path, rca_home):
    p = write(tmp_path / "nova-compute.log", "\n".join(LINES) + "\n")
    assert rca("parse", str(p), "--json", "--summary").returncode == 0
    info = json.loads(rca("cache", "info", "--json").stdout)
    assert info["parsed"]["entries"] == 1 and info["templates"]["templates"] >= 3
    second = json.loads(rca("parse", str(p), "--json", "--summary").stdout)
    assert second["totals"]["files_cached"] == 1
    cleared = json.loads(rca("cache", "clear", "--target", "parsed", "--json").stdout)
    assert cleared == {"cleared": {"parsed": 1}}
    info = json.loads(rca("cache", "info", "--json").stdout)
    assert info["parsed"]["entries"] == 0 and info["templates"]["templates"] >= 3
    assert json.loads(rca("cache", "clear", "--json").stdout)["cleared"]["templates"] >= 3
    assert json.loads(rca("templates", "--json").stdout) == []


def test_cache_info_and_clear_cover_the_machine_embedding_cache(tmp_path, rca_home, monkeypatch):
    """Shown by `rca cache info`, cleared only when named (it is shared by every RCA_HOME on the machine)."""
    import numpy as np

    from openstack_rca.retrieve.cache import EmbeddingCache

    monkeypatch.setenv("RCA_RETRIEVAL_CACHE_DIR", str(tmp_path / "machine-cache"))
    EmbeddingCache(tmp_path / "machine-cache" / "embeddings" / "vectors.sqlite3").put(
        "m", ["a", "b", "c"], np.ones((3, 4), np.float32))
    info = json.loads(rca("cache", "info", "--json").stdout)["embeddings"]
    assert info["vectors"] == 3 and info["max_vectors"] == 200_000 and info["path"].startswith(str(tmp_path))
    assert "embeddings" not in json.loads(rca("cache", "clear", "--json").stdout)["cleared"]
    assert json.loads(rca("cache", "info", "--json").stdout)["embeddings"]["vectors"] == 3
    cleared = json.loads(rca("cache", "clear", "--target", "embeddings", "--json").stdout)["cleared"]
    assert cleared == {"embeddings": 3}
    assert json.loads(rca("cache", "info", "--json").stdout)["embeddings"]["vectors"] == 0


def test_templates_command_lists_learned_templates(tmp_path):
    p = write(tmp_path / "nova-compute.log", "\n".join(LINES) + "\n")
    rca("parse", str(p), "--json", "--summary")
    rows = json.loads(rca("templates", "--json").stdout)
    assert {r["template"] for r in rows} >= {"Instance failed to spawn", "[instance: <*>] Claim successful on node <*>"}


def test_usage_errors_are_one_line():
    for args in ((), ("parse",), ("cache",), ("parse", "--bogus", "x")):
        res = rca(*args)
        assert res.returncode == 2 and res.stderr.count("\n") == 1 and "--help" in res.stderr, args


def test_simulate_unknown_fault_lists_the_choices(tmp_path):
    res = rca("simulate", "--fault", "meteor_strike", "--out", str(tmp_path / "x"))
    assert res.returncode == 2 and res.stderr.count("\n") == 1 and "rabbitmq_outage" in res.stderr


def test_simulate_then_parse_json(tmp_path):
    truth = json.loads(rca("simulate", "--fault", "no_valid_host", "--out", str(tmp_path / "logs"), "--lines", "800",
                           "--json").stdout)
    assert truth["category"] == "scheduling" and truth["root_cause"]
    summary = json.loads(rca("parse", str(tmp_path / "logs"), "--json", "--summary").stdout)
    assert summary["totals"]["lines"] == truth["lines"] and summary["totals"]["unparsed"] == 0
    faults = json.loads(rca("simulate", "--list", "--json").stdout)
    assert {f["fault"] for f in faults} >= {"rabbitmq_outage", "none", "no_valid_host"}


# -- the analysis report as an SRE reads it (rendered in-process from a hand-made report) -------------------------
def render_report(monkeypatch, width: int, details: bool = False, report: dict | None = None) -> str:
    """``console.report`` into a string at a fixed terminal width."""
    import io

    from rich.console import Console

    from openstack_rca import console

    from .sample_report import sample_report

    term = Console(width=width, file=io.StringIO(), highlight=False, soft_wrap=False)
    monkeypatch.setattr(console, "out", term)
    console.report(report or sample_report(), details=details)
    return term.file.getvalue()


def flat(text: str) -> str:
    """Rendered text with table wrapping undone: panel borders dropped, whitespace folded."""
    return " ".join(text.replace("│", " ").split())


@pytest.mark.parametrize("width", [120, 80])
def test_report_leads_with_the_log_text_at_any_width(monkeypatch, width):
    from .sample_report import HOSTILE, QUOTE

    out = render_report(monkeypatch, width)
    assert max(len(line) for line in out.splitlines()) <= width
    header = next(line for line in out.splitlines() if line.startswith("id "))
    assert header.split() == ["id", "time", "service", "host", "level", "n", "text"]
    rows = [line for line in out.splitlines() if re.match(r"E\d ", line)]
    assert [r.split()[0] for r in rows] == ["E1", "E2", "E3"]  # the ids never collapse to nothing
    assert [r.split()[1] for r in rows] == ["09:38:41", "09:38:42", "09:38:43"]
    assert "1234" in rows[1] and rows[2].split()[3] == "-"  # the count, and "-" for a file that names no host
    text = flat(out)
    assert f"Failed to schedule_create_volume: {QUOTE}" in text
    # log text stays text: no markup read, no terminal control code sent
    assert flat(HOSTILE.replace("\x1b", "\\x1b")) in text and "\x1b" not in out
    # no signal columns, here or in a table of their own, without --details (which the report points to)
    assert not [line for line in out.splitlines() if {"lexical", "lstm", "score"} & set(line.split())]
    assert "signals per evidence item" not in out and "--details" in out


def test_report_root_cause_card_has_quote_code_host_warnings_and_chain(monkeypatch):
    from .sample_report import API, CHAIN_TEXT, HOST_MISMATCH, QUOTE, UNFAMILIAR

    out = render_report(monkeypatch, 120)
    card = flat(out[: out.index("╰")])
    assert card.startswith("╭─ root cause — volume attach fails on compute-2")
    assert "cinder category: scheduling confidence: 0.82" in card
    assert f"{QUOTE} (E1)" in card
    assert "code: cinder/scheduler/filter_scheduler.py:_choose_top_backend line 304 (TypeError)" in card
    assert "logged by cinder-scheduler on controller-1 (not the host the issue names)" in card
    assert card.count(f"warning: {UNFAMILIAR}") == 1 and f"warning: {HOST_MISMATCH}" in card
    assert f"▶ 09:38:41 cinder-scheduler ERROR E1 {QUOTE}" in card
    assert f"09:38:42 nova-api WARN {CHAIN_TEXT} → {API}" in card
    assert "narrative (offline)" in out


def test_report_without_a_root_cause_says_so(monkeypatch):
    from .sample_report import sample_report

    rep = sample_report()
    rep["root_cause"] = {"component": None, "category": None, "confidence": 0.12, "evidence_id": None,
                         "summary": "No evidence found: no incident in these logs matches it.", "warnings": []}
    rep["warnings"] = []
    card = flat(render_report(monkeypatch, 80, report=rep).split("╰")[0])
    assert "No evidence found confidence: 0.12" in card and "warning" not in card and "chain" not in card


def test_details_flag_adds_the_signals_table(monkeypatch, tmp_path, capsys):
    """``--details`` prints each item's role, score and signals; ``--json`` stays the raw report."""
    import io

    from rich.console import Console

    from openstack_rca import analyze, cli, console

    from .sample_report import sample_report

    class FakeAnalyzer:
        def __init__(self, cfg, **kwargs):
            pass

        def analyze(self, issue, **kwargs):
            return sample_report()

    monkeypatch.setattr(analyze, "Analyzer", FakeAnalyzer)
    # in process, the CLI's quieting of ML/SDK loggers would outlive this test (the SDK's logging is tested later)
    monkeypatch.setattr(cli, "_quiet_rag", lambda: None)
    monkeypatch.setattr(cli, "_quiet_ml", lambda: None)
    args = ["analyze", "--logs", str(tmp_path), "--issue", "volume attach fails on compute-2"]
    assert cli.main([*args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    # the CLI adds the process's own start-up (interpreter and imports) to the engine's timings
    assert got["timings_ms"].pop("startup") > 0
    assert got == json.loads(json.dumps(sample_report()))

    term = Console(width=120, file=io.StringIO(), highlight=False, soft_wrap=False)
    monkeypatch.setattr(console, "out", term)
    assert cli.main([*args, "--details"]) == 0
    out = term.file.getvalue()
    head = next(line for line in out.splitlines() if line.split()[:3] == ["id", "role", "score"])
    assert head.split() == ["id", "role", "score", "severity", "lexical", "relevance", "lstm", "novelty",
                            "model_weight", "onset", "where"]
    e1 = next(line.split() for line in out.splitlines() if line.split()[:2] == ["E1", "root_cause"])
    assert e1[2:5] == ["0.90", "1.00", "0.41"]

    term = Console(width=120, file=io.StringIO(), highlight=False, soft_wrap=False)
    monkeypatch.setattr(console, "out", term)
    assert cli.main(args) == 0
    assert "signals per evidence item" not in term.file.getvalue()


def test_parse_imports_no_heavy_stack(tmp_path):
    """`rca parse` starts in well under a second: no pandas (pyarrow would load it just to probe values), and
    none of the model, training or retrieval stacks, in the parent or its parse workers."""
    p = write(tmp_path / "nova-compute.log", ("\n".join(LINES) + "\n") * 500)
    code = (
        "import sys, json\n"
        "def loaded(names):\n"
        "    return [m for m in names if m in sys.modules]\n"
        "from openstack_rca.cli import main\n"
        "from openstack_rca.parse import engine\n"
        f"assert main(['parse', '--summary', '--json', {str(p)!r}]) == 0\n"
        "heavy = ['pandas', 'tensorflow', 'mlflow', 'sklearn', 'torch', 'chromadb']\n"
        "pool = engine._POOL\n"
        "workers = pool.submit(loaded, heavy + ['pyarrow.acero']).result() if pool else None\n"
        "print(json.dumps({'parent': loaded(heavy), 'workers': workers}), file=sys.stderr)\n"
    )
    env = {**os.environ, "RCA_PARSE_PARALLEL_MIN_BYTES": "0", "RCA_PARSE_CHUNK_BYTES": "65536", "RCA_PARSE_WORKERS": "2"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr
    seen = json.loads(res.stderr.strip().splitlines()[-1])
    assert seen["workers"] is not None, "the input was meant to be parsed by workers"
    assert seen["parent"] == [] and seen["workers"] == []  # workers skip even Arrow's query engine
