"""Shared fixtures: every test gets its own RCA_HOME, so nothing touches the user's real data home."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from openstack_rca.config import RCAConfig, load

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = Path(os.environ.get("RCA_LOGHUB_DIR", ROOT.parent / "shared" / "data" / "loghub"))


@pytest.fixture(autouse=True)
def rca_home(tmp_path_factory, monkeypatch) -> Path:
    home = tmp_path_factory.mktemp("rca-home")
    monkeypatch.setenv("RCA_HOME", str(home))
    monkeypatch.delenv("RCA_CONFIG", raising=False)
    # mlflow.set_tracking_uri() exports MLFLOW_TRACKING_URI; without this one test's store leaks into the next
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    for key in list(os.environ):
        if key.startswith("RCA_") and key not in ("RCA_HOME", "RCA_LOGHUB_DIR"):
            monkeypatch.delenv(key, raising=False)
    return home


@pytest.fixture
def cfg(rca_home) -> RCAConfig:
    return load()


@pytest.fixture
def loghub() -> Path:
    log = LOGHUB / "OpenStack_2k.log"
    if not (log.is_file() and (LOGHUB / "OpenStack_2k.log_structured.csv").is_file()):
        pytest.skip(f"loghub OpenStack_2k sample not found under {LOGHUB} (it lives in ../shared/data/loghub)")
    return LOGHUB
