"""The RCA engine end to end on simulated incidents: the root-cause line in the top 3, the right category,
low confidence when the logs do not support the issue, and the report contract."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from openstack_rca import simulate
from openstack_rca.analyze import Analyzer
from openstack_rca.diagnose import CATEGORIES, NO_EVIDENCE

# How an operator would describe each incident: the symptom, in their words, never the cause.
ISSUES = {
    "rabbitmq_outage": "API calls time out and new instances stay in BUILD",
    "db_pool_exhausted": "instance builds fail and compute services report errors",
    "neutron_vif_failure": "new instances on compute-2 fail to boot",
    "compute_disk_full": "instances fail to boot on one host",
    "keystone_auth_failure": "nova API returns 503 for every request",
    "libvirt_domain_failure": "instances fail to boot since 09:00",
    "no_valid_host": "instances go to ERROR state right after create",
    "cinder_volume_attach_failure": "volume attach fails",
    "glance_image_unavailable": "instances fail to boot from one image",
}
UNRELATED = "the office printer on floor 3 is out of toner"
FAULTS = sorted(f for f in simulate.FAULTS if f != "none")
SEEDS = (3, 11)


@pytest.fixture(scope="module")
def incidents(tmp_path_factory):
    root = tmp_path_factory.mktemp("incidents")
    out = {}
    for seed in SEEDS:
        for fault in FAULTS:
            d = root / f"{fault}-{seed}"
            out[fault, seed] = (d, simulate.simulate(fault, d, lines=5000, seed=seed))
    return out


@pytest.fixture(scope="module")
def analyzer(trained):
    cfg, loaded = trained
    return Analyzer(cfg, loaded=loaded)


def _rank_of_root_cause(report: dict, logs: Path, truth: dict) -> list[int]:
    refs = {(r["file"], r["line"]) for r in truth["root_cause"]}
    return [ev["rank"] for ev in report["evidence"]
            if (os.path.relpath(ev["source"], logs), ev["line_no"]) in refs]


def test_every_fault_kind_is_simulated():
    assert set(ISSUES) == set(FAULTS)
    assert {simulate.FAULTS[f].category for f in FAULTS} <= set(CATEGORIES)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fault", FAULTS)
def test_fast_mode_finds_the_root_cause(analyzer, incidents, fault, seed):
    logs, truth = incidents[fault, seed]
    rep = analyzer.analyze(ISSUES[fault], paths=[logs], mode="fast", narrate=False)
    ranks = _rank_of_root_cause(rep, logs, truth)
    assert ranks and ranks[0] <= 3, f"root-cause line not in the top 3: {[e['text'][:70] for e in rep['evidence'][:3]]}"
    assert rep["root_cause"]["category"] == truth["category"]
    assert rep["root_cause"]["confidence"] >= NO_EVIDENCE
    assert rep["mode"] == "fast"


@pytest.mark.parametrize("fault", FAULTS)
def test_hybrid_mode_finds_the_root_cause(analyzer, incidents, fault):
    logs, truth = incidents[fault, SEEDS[0]]
    rep = analyzer.analyze(ISSUES[fault], paths=[logs], mode="hybrid", narrate=False)
    assert rep["mode"] == "hybrid", rep["warnings"]
    assert all("semantic" in ev["signals"] for ev in rep["evidence"])
    assert "retrieve" in rep["timings_ms"] and "index" not in rep["timings_ms"]  # logs given directly: no Chroma
    ranks = _rank_of_root_cause(rep, logs, truth)
    assert ranks and ranks[0] <= 3
    assert rep["root_cause"]["category"] == truth["category"]
    assert rep["root_cause"]["confidence"] >= NO_EVIDENCE


@pytest.mark.parametrize("fault", ["neutron_vif_failure", "cinder_volume_attach_failure", "keystone_auth_failure"])
def test_hybrid_embeds_only_the_templates_that_can_matter(analyzer, incidents, fault):
    """Hybrid mode asks for the similarity of the clusters that can change the report, and reports exactly what
    it would with every template's similarity."""
    from openstack_rca.diagnose import diagnose, parse_issue
    from openstack_rca.parse import Parser
    from openstack_rca.retrieve import Similarity, template_texts

    logs, _ = incidents[fault, SEEDS[0]]
    issue = ISSUES[fault]
    rep = analyzer.analyze(issue, paths=[logs], mode="hybrid", narrate=False)
    tab = Parser(analyzer.cfg).parse([logs]).table
    scores, bundle = analyzer.model.bundle.score(tab), analyzer.model.bundle
    texts = template_texts(tab)
    emb = analyzer.embedder()
    q = emb.embed_query(issue)
    everything = Similarity(q, embedder=emb, texts=texts)(sorted(texts))
    for top_k in (10, 3):
        lazy = Similarity(q, embedder=emb, texts=texts)
        full = diagnose(tab, scores, bundle, parse_issue(issue), semantic=everything, top_k=top_k)
        part = diagnose(tab, scores, bundle, parse_issue(issue), semantic=lazy, top_k=top_k)
        assert part.root_cause == full.root_cause and part.evidence == full.evidence
        assert part.timeline == full.timeline and part.affected == full.affected
        asked = set(lazy.asked)
        assert len(asked) == len(lazy.asked)  # none twice
        assert {ev["template_id"] for ev in full.evidence} <= asked
        assert len(asked) <= len(texts) // 3, f"embedded {len(asked)} of {len(texts)} templates"
        if top_k == 10:
            assert rep["root_cause"] == full.root_cause
            assert rep["evidence"] == [{k: v for k, v in ev.items() if k != "row"} for ev in full.evidence]


def test_an_embedding_failure_during_the_diagnosis_falls_back_to_fast_mode(analyzer, incidents, monkeypatch):
    from openstack_rca.retrieve import EmbeddingUnavailable

    logs, _ = incidents["no_valid_host", SEEDS[0]]
    issue = ISSUES["no_valid_host"]
    emb = analyzer.embedder()
    emb.embed_query(issue)  # the question embeds; the templates the diagnosis then asks for do not

    def broken(texts):
        raise EmbeddingUnavailable("ONNX Runtime failed")

    monkeypatch.setattr(emb, "embed", broken)
    rep = analyzer.analyze(issue, paths=[logs], mode="hybrid", narrate=False)
    fast = analyzer.analyze(issue, paths=[logs], mode="fast", narrate=False)
    assert rep["mode"] == "fast" and any("ONNX Runtime failed" in w for w in rep["warnings"])
    assert rep["evidence"] == fast["evidence"]


def test_hybrid_corpus_analysis_needs_no_chroma(trained, incidents):
    """The vectors kept with a corpus answer its hybrid analyses: no chromadb, torch or sentence-transformers
    import in the analysing process, and the answer of the same logs given directly."""
    cfg, loaded = trained
    logs, _ = incidents["neutron_vif_failure", SEEDS[0]]
    issue = ISSUES["neutron_vif_failure"]
    a = Analyzer(cfg, loaded=loaded)
    res = a.ingest([logs], "vif-vectors")
    assert res["indexed"] is True, res["warnings"]
    direct = a.analyze(issue, paths=[logs], mode="hybrid", narrate=False)
    code = ("import json, sys\n"
            "from openstack_rca.analyze import Analyzer\n"
            "from openstack_rca.config import load\n"
            f"rep = Analyzer(load()).analyze({issue!r}, corpus='vif-vectors', narrate=False)\n"
            "heavy = [m for m in ('chromadb', 'torch', 'sentence_transformers', 'transformers') if m in sys.modules]\n"
            "print(json.dumps({'rep': rep, 'heavy': heavy}, default=str))\n")
    env = {**os.environ, "RCA_HOME": str(cfg.home), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=240)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    rep = out["rep"]
    assert rep["mode"] == "hybrid" and not rep["warnings"] and "index" not in rep["timings_ms"]
    assert out["heavy"] == [], out["heavy"]
    assert rep["root_cause"] == json.loads(json.dumps(direct["root_cause"], default=str))
    assert rep["evidence"] == json.loads(json.dumps(direct["evidence"], default=str))


@pytest.mark.parametrize("mode", ["fast", "hybrid"])
@pytest.mark.parametrize("fault", FAULTS)
def test_an_unrelated_issue_gets_low_confidence(analyzer, incidents, fault, mode):
    logs, _ = incidents[fault, SEEDS[1]]
    rep = analyzer.analyze(UNRELATED, paths=[logs], mode=mode, narrate=False)
    assert rep["root_cause"]["confidence"] < NO_EVIDENCE
    assert rep["root_cause"]["component"] is None
    assert rep["root_cause"]["summary"].startswith("No evidence found")


def test_normal_logs_give_no_evidence_for_a_real_symptom(analyzer, tmp_path):
    simulate.simulate("none", tmp_path, lines=4000, seed=9)
    rep = analyzer.analyze("instances fail to boot since 09:10", paths=[tmp_path], mode="fast")
    assert rep["root_cause"]["confidence"] < NO_EVIDENCE
    assert rep["narrative"]["source"] == "offline" and "No evidence found" in rep["narrative"]["text"]


DEVSTACK = Path(__file__).parent / "data" / "devstack"


def test_devstack_message_only_logs_without_timestamps(analyzer):
    """DevStack's nova-compute as `journalctl -o cat` writes it: no timestamps, two builds that die waiting for
    network-vif-plugged. Line order stands in for time; the first failing line leads and networking is named."""
    rep = analyzer.analyze("New instances fail to boot", paths=[DEVSTACK], mode="fast", narrate=True)
    rc = rep["root_cause"]
    assert rc["confidence"] >= NO_EVIDENCE and rc["category"] == "network"
    first_failing = {20, 21}  # the vif-plugged timeout warning and the spawn failure it causes
    assert first_failing & {ev["line_no"] for ev in rep["evidence"][:3]}
    assert rc["quote"].startswith("nova.exception.VirtualInterfaceCreateException")
    assert any("line order" in w for w in rep["warnings"]) and rep["series"] == {}
    assert "None" not in rep["narrative"]["text"]


def test_report_contract(analyzer, incidents):
    logs, truth = incidents["libvirt_domain_failure", SEEDS[0]]
    rep = analyzer.analyze(ISSUES["libvirt_domain_failure"], paths=[logs], mode="fast", top_k=5)
    json.dumps(rep)  # serialisable as is
    for key in ("issue", "mode", "root_cause", "evidence", "timeline", "affected", "narrative", "model",
                "timings_ms"):
        assert key in rep
    assert set(rep["root_cause"]) >= {"component", "category", "summary", "confidence"}
    assert 0.0 <= rep["root_cause"]["confidence"] <= 1.0
    assert len(rep["evidence"]) == 5 and [e["rank"] for e in rep["evidence"]] == [1, 2, 3, 4, 5]
    for ev in rep["evidence"]:
        assert set(ev) >= {"rank", "source", "line_no", "text", "service", "level", "timestamp", "score",
                           "signals", "expected"}
        assert set(ev["signals"]) >= {"lstm", "lexical", "severity"}
    assert rep["timeline"] == sorted(rep["timeline"], key=lambda e: e["time"])
    assert [e for e in rep["timeline"] if e["kind"] == "root_cause"][0]["evidence_id"] == "E1"
    assert set(truth["affected"]["instances"]) & set(rep["affected"]["instances"])
    assert "nova-compute" in rep["affected"]["services"]
    assert rep["narrative"]["source"] == "offline" and "[E1]" in rep["narrative"]["text"]
    assert set(rep["narrative"]["citations"]) <= {e["id"] for e in rep["evidence"]}
    assert rep["model"]["version"] == "1"
    assert {"parse", "score", "diagnose", "total"} <= set(rep["timings_ms"])


def test_the_issue_time_picks_the_incident(analyzer, incidents):
    """An issue time long after the incident: the incident is old news, and confidence drops."""
    logs, _ = incidents["cinder_volume_attach_failure", SEEDS[0]]
    near = analyzer.analyze("volume attach fails since 09:30", paths=[logs], mode="fast", narrate=False)
    later = analyzer.analyze("volume attach fails since 23:50", paths=[logs], mode="fast", narrate=False)
    assert later["root_cause"]["confidence"] < near["root_cause"]["confidence"]


def test_ingested_corpus_gives_the_same_answer(analyzer, incidents):
    logs, truth = incidents["glance_image_unavailable", SEEDS[0]]
    res = analyzer.ingest([logs], "glance-incident", index=False)
    assert res["input"]["lines"] == truth["lines"] and res["indexed"] is False
    direct = analyzer.analyze(ISSUES["glance_image_unavailable"], paths=[logs], mode="fast", narrate=False)
    stored = analyzer.analyze(ISSUES["glance_image_unavailable"], corpus="glance-incident", mode="fast",
                              narrate=False)
    assert [e["text"] for e in stored["evidence"]] == [e["text"] for e in direct["evidence"]]
    assert "score" not in stored["timings_ms"]  # scores were stored at ingest
    # hybrid on a corpus ingested without its index: fast mode, said so
    hyb = analyzer.analyze(ISSUES["glance_image_unavailable"], corpus="glance-incident", mode="hybrid",
                           narrate=False)
    assert hyb["mode"] == "fast" and any("semantic index" in w for w in hyb["warnings"])


@pytest.mark.parametrize("bad, msg", [
    (dict(issue=""), "issue text is empty"),
    (dict(issue="x" * 3000), "under"),
    (dict(issue="ok", mode="turbo"), "mode must be"),
    (dict(issue="ok", top_k=0), "top_k"),
])
def test_bad_requests_are_clear_errors(analyzer, incidents, bad, msg):
    from openstack_rca.errors import InvalidInput

    logs, _ = incidents["no_valid_host", SEEDS[0]]
    with pytest.raises(InvalidInput, match=msg):
        analyzer.analyze(paths=[logs], **bad)


def _rca(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RCA_HOME": str(home), "HF_HUB_OFFLINE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop("ANTHROPIC_API_KEY", None)
    return subprocess.run([sys.executable, "-m", "openstack_rca", *args], capture_output=True, text=True, env=env,
                          timeout=240)


def test_cli_analyze_json_and_errors(trained, incidents):
    cfg, _ = trained
    logs, truth = incidents["no_valid_host", SEEDS[0]]
    r = _rca(cfg.home, "analyze", "--logs", str(logs), "--issue", ISSUES["no_valid_host"], "--fast-mode", "--json")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["root_cause"]["category"] == "scheduling" and rep["mode"] == "fast"
    r = _rca(cfg.home, "analyze", "--logs", str(logs), "--issue", ISSUES["no_valid_host"], "--fast-mode")
    assert r.returncode == 0 and "root cause" in r.stdout and "narrative (offline)" in r.stdout
    for args, code in (
        (["analyze", "--logs", str(logs)], 2),  # no --issue
        (["analyze", "--logs", "/nonexistent/x.log", "--issue", "boot fails"], 2),
        (["analyze", "--logs", str(logs), "--corpus", "c", "--issue", "boot fails"], 2),
        (["analyze", "--corpus", "never-ingested", "--issue", "boot fails"], 2),
        (["analyze", "--logs", str(logs), "--issue", "boot fails", "--top-k", "0"], 2),
    ):
        r = _rca(cfg.home, *args)
        assert r.returncode == code, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rca: error:"), r.stderr
