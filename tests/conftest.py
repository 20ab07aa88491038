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


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """One model for the whole run, trained the way `make demo` trains it (normal simulated traffic).

    Returns ``(cfg, loaded)``: the config whose RCA_HOME holds the registry, and the loaded model. Tests build
    an ``Analyzer(cfg, loaded=loaded)`` on it, or point RCA_HOME at ``cfg.home`` for CLI tests.
    """
    import warnings

    from model_training.pipeline import train
    from openstack_rca import registry, simulate
    from openstack_rca.score.deeplog import DeepLogConfig

    warnings.simplefilter("ignore", UserWarning)
    home = tmp_path_factory.mktemp("trained-home")
    logs = tmp_path_factory.mktemp("normal-logs")
    simulate.simulate("none", logs, lines=12000, seed=1)
    cfg = load(env={"RCA_HOME": str(home)})
    mp = pytest.MonkeyPatch()
    mp.delenv("MLFLOW_TRACKING_URI", raising=False)
    try:
        train([logs], cfg, DeepLogConfig(window=cfg.model.window, top_g=cfg.model.top_g, epochs=cfg.model.epochs,
                                         seed=0))
        loaded = registry.load(cfg)
    finally:
        mp.undo()
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    return cfg, loaded
