"""A bounded soak through the load-test runner: 16 locust users for 120 s against a real `bentoml serve` (score,
ingested-corpus analyses in both modes, model info), every request checked; the server's memory is sampled
throughout and its growth recorded. Slow (about 3 minutes); CI runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.timeout(900)  # the fixture trains (~1 min), then setup, ramp-up, 120 s measured, drain
def test_soak_16_users_120_s_without_errors(trained, tmp_path):
    import importlib.util

    if importlib.util.find_spec("locust") is None:  # not imported here: locust monkey-patches with gevent on import
        pytest.skip("locust is a dev dependency")
    if not (Path(sys.executable).parent / "bentoml").exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    cfg, _ = trained
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RCA_API_TOKEN": "soak-token"}
    env.pop("MLFLOW_TRACKING_URI", None)
    r = subprocess.run([sys.executable, "loadtests/run.py", "--rca-home", str(cfg.home), "--users", "16",
                        "--spawn-rate", "8", "--duration", "120", "--warmup", "5", "--out", str(tmp_path / "out"),
                        "--json"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode in (0, 1), r.stderr[-3000:]
    doc = json.loads(r.stdout)
    (run,) = doc["runs"]
    total = next(row for row in run["rows"] if row["endpoint"] == "Aggregated")
    assert total["requests"] > 100, run["rows"]
    assert doc["failed_requests"] == 0, run["failures"]
    assert r.returncode == 0
    mem = run["memory"]
    assert mem["samples"] >= 10 and mem["start_mb"] > 0 and mem["peak_mb"] >= mem["end_mb"] > 0, mem
    print(f"soak: {total['requests']} requests, {total['rps']} RPS, p95 {total['p95_ms']} ms; server RSS "
          f"{mem['start_mb']} -> {mem['end_mb']} MB (peak {mem['peak_mb']}, {mem['growth_mb_per_min']} MB/min)")
