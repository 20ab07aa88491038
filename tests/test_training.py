"""Training -> MLflow (local sqlite store) -> registry alias -> the one loader, with its fallbacks."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from openstack_rca import registry, simulate
from openstack_rca.errors import InvalidInput
from openstack_rca.parse import Parser

pytest.importorskip("keras")
pytest.importorskip("mlflow")
from model_training.pipeline import train  # noqa: E402
from openstack_rca.score.deeplog import DeepLogConfig  # noqa: E402

from .helpers import score_in_fresh_process  # noqa: E402

HP = DeepLogConfig(window=5, embed_dim=8, hidden=16, layers=1, epochs=2, batch_size=256)


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    d = tmp_path_factory.mktemp("logs")
    simulate.simulate("none", d / "normal", lines=1500, seed=5)
    simulate.simulate("compute_disk_full", d / "fault", lines=800, seed=6)
    return d


def test_train_registers_versions_and_moves_the_alias(cfg, logs):
    import mlflow

    first = train([logs / "normal"], cfg, HP)
    assert first["version"] == "1" and first["alias"] == "champion" and first["promoted"] is True
    assert (first["model_uri"], first["alias_uri"]) == ("models:/openstack-rca-lstm/1",
                                                        "models:/openstack-rca-lstm@champion")
    assert set(first["metrics"]) >= {"loss", "top_g_accuracy", "session_false_positive_rate"}
    run = mlflow.MlflowClient().get_run(first["run_id"])
    assert run.data.params["window"] == "5" and "loss" in run.data.metrics
    assert run.data.tags["promotion"] == "promoted"
    kept = train([logs / "normal"], cfg, replace(HP, seed=1), promote=False)  # --no-promote: registered only
    assert (kept["version"], kept["promoted"], kept["champion_version"]) == ("2", False, "1")
    assert registry.load(cfg).version == "1"
    second = train([logs / "normal"], cfg, replace(HP, seed=1), promote=True)
    assert second["version"] == "3"
    versions = registry.list_versions(cfg)
    assert [(v["version"], v["aliases"]) for v in versions] == [("3", ["champion"]), ("2", []), ("1", [])]
    assert [v["promotion"] for v in versions] == ["promoted", "rejected", "promoted"]
    assert versions[1]["promotion_reason"] == "not promoted: --no-promote"
    assert registry.promote(cfg, "1")["version"] == "1"
    assert registry.load(cfg).version == "1"
    with pytest.raises(InvalidInput, match="no version 9"):
        registry.promote(cfg, "9")


def test_model_loads_in_a_fresh_process_and_scores_identically(cfg, logs, tmp_path):
    train([logs / "normal"], cfg, HP)
    loaded = registry.load(cfg)
    table = Parser(cfg).parse([logs / "fault"]).table
    here = loaded.bundle.score(table)["anomaly"].to_numpy()
    # a fresh RCA_HOME: nothing local, so the model must come from the registry's artifact store
    other = score_in_fresh_process(logs / "fault", tmp_path / "fresh", cfg.tracking_uri())
    assert other["v"] == loaded.version and other["src"] == "registry"
    np.testing.assert_allclose(other["a"], here, rtol=1e-5, atol=1e-6)


def test_falls_back_to_the_local_copy_when_the_registry_is_down(cfg, logs, monkeypatch, caplog):
    train([logs / "normal"], cfg, HP)
    registry.load(cfg)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    down = cfg.replace(model=replace(cfg.model, tracking_uri="http://127.0.0.1:9"))
    loaded = registry.load(down)
    assert loaded.source == "local-fallback" and loaded.version == "1"
    assert "using local copy" in caplog.text
    empty = down.replace(home=cfg.home / "elsewhere")
    with pytest.raises(registry.ModelNotReady, match="rca train"):
        registry.load(empty)


def test_corrupted_local_copy_is_downloaded_again(cfg, logs):
    result = train([logs / "normal"], cfg, HP)
    (registry._copy_dir(cfg, result["version"]) / "bundle" / "lstm.npz").write_bytes(b"garbage")
    loaded = registry.load(cfg)
    assert loaded.source == "registry" and loaded.bundle.vocab.ids


def test_a_local_copy_loads_without_mlflow_and_a_moved_alias_downloads(cfg, logs):
    train([logs / "normal"], cfg, HP)
    train([logs / "normal"], cfg, replace(HP, seed=1), promote=True)
    shutil.rmtree(registry._copy_dir(cfg, "1"))
    code = ("import json, sys; from openstack_rca.config import load; from openstack_rca import registry;"
            "m = registry.load(load()); print(json.dumps({'v': m.version, 'src': m.source, 'ms': m.load_ms,"
            "'mlflow': 'mlflow' in sys.modules, 'tf': 'tensorflow' in sys.modules}))")

    def fresh() -> dict:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:]
        return json.loads(out.stdout.strip().splitlines()[-1])

    here = fresh()
    assert (here["v"], here["src"], here["mlflow"], here["tf"]) == ("2", "registry", False, False)
    assert 0 < here["ms"] < 5000
    registry.promote(cfg, "1")  # the alias moves to a version with no local copy: only now MLflow downloads it
    moved = fresh()
    assert (moved["v"], moved["src"], moved["mlflow"]) == ("1", "registry", True)
    assert (registry._copy_dir(cfg, "1") / "bundle" / "lstm.npz").is_file()
    assert fresh()["mlflow"] is False


def test_too_little_data_says_how_much_is_needed(cfg, tmp_path):
    simulate.simulate("none", tmp_path / "tiny", lines=200, seed=1)
    few = tmp_path / "few.log"
    few.write_text("".join(open(f).readline() for f in sorted((tmp_path / "tiny").rglob("*.log"))[:3]))
    with pytest.raises(InvalidInput, match="too little data to train"):
        train([few], cfg, HP)


def test_evaluate_reports_per_fault_detection_and_normal_false_positives(cfg, logs, tmp_path):
    from model_training.evaluate import evaluate

    train([logs / "normal"], cfg, HP)
    simulate.simulate("none", tmp_path / "eval" / "none", lines=600, seed=8)
    simulate.simulate("rabbitmq_outage", tmp_path / "eval" / "rabbit", lines=900, seed=9)
    rows = {r["fault"]: r for r in evaluate([tmp_path / "eval", logs / "fault"], cfg, registry.load(cfg))}
    assert set(rows) == {"none", "rabbitmq_outage", "compute_disk_full"}
    for fault in ("rabbitmq_outage", "compute_disk_full"):
        r = rows[fault]
        assert r["anomalous_sessions"] > 0 and r["recall"] is not None and 0 <= r["recall"] <= 1
        assert r["flagged_sessions"] <= r["sessions"]
    assert rows["none"]["anomalous_sessions"] == 0 and rows["none"]["precision"] is None
    assert 0 <= rows["none"]["false_positive_rate"] <= 1


def test_one_template_corpus_unseen_templates_and_empty_input(cfg, tmp_path):
    lines = [f"2026-11-23 10:{i // 60:02d}:{i % 60:02d}.000 {100 + i % 20} INFO nova.compute.manager [-] "
             f"Running periodic task ComputeManager._heal_instance_info_cache" for i in range(400)]
    (tmp_path / "one.log").write_text("\n".join(lines) + "\n")
    result = train([tmp_path / "one.log"], cfg, HP)  # 20 streams, one template: trainable, if dull
    bundle = registry.load(cfg).bundle
    assert len(bundle.vocab) == 3 and result["metrics"]["top_g_accuracy"] == 1.0
    other = tmp_path / "other.log"
    other.write_text("2026-11-23 11:00:00.000 7 ERROR nova.compute.manager [-] Something it never saw 42\n" * 3)
    scores = bundle.score(Parser(cfg).parse([other]).table)
    assert scores.num_rows == 3 and scores["anomaly"].to_numpy().min() > 0.5
    empty = Parser(cfg).parse([other]).table.slice(0, 0)
    assert bundle.score(empty).num_rows == 0


def test_score_without_any_model_tells_to_train(tmp_path, rca_home):
    import os

    (tmp_path / "x.log").write_text("2026-11-23 11:00:00.000 7 INFO nova.compute.manager [-] hello\n")
    env = {**os.environ, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    out = subprocess.run([sys.executable, "-m", "openstack_rca", "score", str(tmp_path / "x.log")],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 1 and "rca train" in out.stderr.splitlines()[-1]


def test_registered_model_loads_as_one_pyfunc_on_raw_lines_and_tfidf_ranks_by_issue(cfg, logs):
    import mlflow
    import pandas as pd
    from mlflow.exceptions import MlflowException

    result = train([logs / "normal", logs / "fault"], cfg, HP)
    registry._mlflow(cfg)
    model = mlflow.pyfunc.load_model(result["alias_uri"])
    files = sorted((logs / "fault").rglob("*.log"))
    lines = [{"line": line, "source": f.relative_to(logs).as_posix()}
             for f in files for line in f.read_text().splitlines()]
    out = model.predict(pd.DataFrame(lines))  # a DataFrame of the signature's fields works in process
    assert len(out) == len(lines) and all(r.parsed for r in out)
    table = Parser(cfg).parse(files).table
    bundle = registry.load(cfg).bundle
    want = bundle.score(table)["anomaly"].to_numpy()
    row = {(Path(src).relative_to(logs).as_posix(), ln): r
           for r, (src, ln) in enumerate(zip(table["source"].to_pylist(), table["line_no"].to_pylist()))}
    firsts = [(r.source, r.record_line_no) for r in out]
    np.testing.assert_allclose([r.anomaly for r in out], want[[row[k] for k in firsts]], atol=1e-6)
    with pytest.raises(MlflowException, match="Extra inputs are not permitted"):
        model.predict([{"line": lines[0]["line"], "level": "INFO"}])
    with pytest.raises(MlflowException, match="no log records in 1 line"):
        model.predict([{"line": "hello, not a log"}])
    msgs = ["[Errno 28] No space left on device", "Took 1.2 seconds to build instance.", "Claim successful"]
    rel = bundle.relevance("instances fail: no space left on the compute disk", msgs)
    assert rel.argmax() == 0 and rel[0] > rel[1]


def test_promotion_gate_compares_held_out_metrics_within_the_tolerance():
    from model_training.promotion import decide

    champ = {"top_g_accuracy": 0.95, "session_false_positive_rate": 0.10}
    assert decide({"top_g_accuracy": 0.67, "session_false_positive_rate": 0.1}, None, None, 0.01).promote
    worse = decide({"top_g_accuracy": 0.67, "session_false_positive_rate": 0.1}, champ, "4", 0.01)
    assert (worse.promote, worse.tag) == (False, "rejected")
    assert "worse than champion v4" in worse.reason and "top_g_accuracy 0.6700 vs 0.9500" in worse.reason
    noisy = decide({"top_g_accuracy": 0.945, "session_false_positive_rate": 0.105}, champ, "4", 0.01)
    assert noisy.promote and "no worse than champion v4" in noisy.reason
    more_alarms = decide({"top_g_accuracy": 0.99, "session_false_positive_rate": 0.2}, champ, "4", 0.01)
    assert not more_alarms.promote and "session_false_positive_rate" in more_alarms.reason
    assert decide({"top_g_accuracy": 0.1}, champ, "4", 0.01, force=True).reason == "forced with --promote"
    best = {"top_g_accuracy": 1.0, "session_false_positive_rate": 0.0}
    assert not decide(best, champ, "4", 0.01, force=False).promote
    legacy = decide({"top_g_accuracy": 0.9, "session_false_positive_rate": 0.1}, {}, "1", 0.01)
    assert legacy.promote and "champion v1 has no top_g_accuracy" in legacy.reason


def test_model_code_and_requirements_leave_training_and_compiled_code_home(tmp_path):
    from model_training import packaging

    reqs = dict(r.split("==") for r in packaging.pip_requirements())
    assert set(reqs) == {"mlflow-skinny", "numpy", "pandas", "pyarrow", "pydantic", "scikit-learn"}
    code = packaging.stage_code(tmp_path)
    names = {p.relative_to(code).as_posix() for p in code.rglob("*") if p.is_file()}
    assert "score/pyfunc.py" in names and "parse/text.py" in names and "config.py" in names
    assert not [n for n in names if not n.endswith(".py")]  # no .so, .c or caches
    assert not any(n.startswith(("retrieve/", "narrate/", "diagnose/", "cli")) for n in names)
