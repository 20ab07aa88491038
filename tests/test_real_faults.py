"""A fast slice of the real-failure benchmark (benchmarks/real_faults.py), so a regression on real OpenStack logs
fails CI: four failures the engine must pin to the mutated source file (two where plain grep does not), two
controls and loghub's failure-free sample where it must say "No evidence found".

Reads ../shared/data (never copied into the project); skips with the reason when it is absent. Uses the session's
simulator-trained model: the harder of the benchmark's two models, since it comes from another deployment."""

from __future__ import annotations

import pytest

from benchmarks import real_faults as rf
from openstack_rca.analyze import Analyzer
from openstack_rca.diagnose import NO_EVIDENCE

FAILURES = ("cinder-14", "cinder-255", "nova-249", "neutron-90")
CONTROLS = ("nova-268", "cinder-153")


@pytest.fixture(scope="module")
def cases():
    try:
        found = rf.load_cases(rf.DATA, FAILURES + CONTROLS)
    except FileNotFoundError as exc:
        pytest.skip(f"real-failure data absent: {exc}")
    if len(found) != len(FAILURES + CONTROLS):
        pytest.skip(f"some slice cases are missing under {rf.DATA}")
    return {c.id: c for c in found}


@pytest.fixture(scope="module")
def judged(cases, trained):
    from openstack_rca.parse import Parser

    cfg, loaded = trained
    analyzer = Analyzer(cfg, loaded=loaded)
    out = {}
    for cid, case in cases.items():
        table = Parser(cfg).parse([case.logs]).table
        j = rf.Judge(case, table)
        rep = analyzer.analyze(case.issue, table=table, mode="fast", narrate=False)
        picks = [j.row(ev["source"], ev["line_no"]) for ev in rep["evidence"]]
        out[cid] = (j, rep, j.verdict(picks, rep["root_cause"]["confidence"]))
    return out


@pytest.mark.parametrize("cid", FAILURES)
def test_a_real_failure_is_pinned_to_the_mutated_file(judged, cid):
    j, rep, v = judged[cid]
    e1 = rep["evidence"][0]
    assert v["named"] and v["subsystem@1"] and v["after"], (e1["service"], e1["text"][:120])
    assert v["module@1"], (j.case.mutated, rep["root_cause"].get("code"), e1["text"][:120])
    assert rep["root_cause"]["chain"] and rep["root_cause"]["quote"]


def test_the_engine_beats_grep_on_the_slice(judged):
    engine = sum(v["module@1"] for cid, (_, _, v) in judged.items() if cid in FAILURES)
    grep = sum(j.verdict(rf.grep_baselines(j)["grep_after"])["module@1"]
               for cid, (j, _, _) in judged.items() if cid in FAILURES)
    assert engine > grep, (engine, grep)


@pytest.mark.parametrize("cid", CONTROLS)
def test_a_control_run_gets_no_root_cause(judged, cid):
    _, rep, _ = judged[cid]
    assert rep["root_cause"]["confidence"] < NO_EVIDENCE, rep["evidence"][0]["text"][:120]
    assert rep["root_cause"]["summary"].startswith("No evidence found")


@pytest.mark.parametrize("issue", rf.LOGHUB_ISSUES)
def test_failure_free_real_logs_give_no_evidence(trained, issue):
    if not rf.LOGHUB.is_file():
        pytest.skip(f"loghub sample absent at {rf.LOGHUB}")
    cfg, loaded = trained
    rep = Analyzer(cfg, loaded=loaded).analyze(issue, paths=[rf.LOGHUB], mode="fast", narrate=False)
    assert rep["root_cause"]["confidence"] < NO_EVIDENCE
    assert any("never seen in training" in w for w in rep["warnings"])  # the simulator model does not know it
