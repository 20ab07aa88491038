"""The one model loader, for the CLI and the BentoML service.

Resolve ``models:/<name>@<alias>`` in MLflow, keep a local copy under ``RCA_HOME/models``, and when the registry
or its artifact store (S3) is unreachable fall back to the last local copy with a warning. With neither, a clear
error that says to run ``rca train``.

MLflow itself is imported only to download a version not yet copied (and for training and ``rca models``): which
version the alias names is asked without it (``alias``), so loading a local copy takes milliseconds, not seconds.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from .alias import alias_version
from .config import RCAConfig
from .errors import RCAError, redact
from .score.bundle import ModelBundle, ModelCorrupt

log = logging.getLogger(__name__)


class ModelNotReady(RCAError, RuntimeError):
    """No model can be loaded (HTTP 503 in the service; CLI exit 1 with `run rca train`)."""


@dataclass
class LoadedModel:
    bundle: ModelBundle
    name: str
    version: str
    alias: str
    source: str  # "registry" | "local-fallback"
    loaded_at: str
    load_ms: float = 0.0  # resolving the alias and reading the copy (a download included, when there was one)


_quiet = False


def quiet_mlflow() -> None:
    """Keep MLflow's (and alembic's) loggers at errors. MLflow sets them up when imported, so the levels are set
    now and again after the deferred import: asking to be quiet never costs the import."""
    global _quiet
    _quiet = True
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # training validates its input example
    _lower_mlflow_loggers()


def _lower_mlflow_loggers() -> None:
    for name in ("mlflow", "alembic"):
        logger = logging.getLogger(name)
        logger.setLevel(logging.ERROR)
        for handler in logger.handlers:
            handler.setLevel(logging.ERROR)


def _mlflow(cfg: RCAConfig):
    import mlflow

    if _quiet:
        _lower_mlflow_loggers()
    uri = cfg.tracking_uri()
    if uri.startswith("sqlite:///"):
        Path(uri[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow


def _copy_dir(cfg: RCAConfig, version: str) -> Path:
    return cfg.models_dir / cfg.model.name / str(version)


def _pointer(cfg: RCAConfig) -> Path:
    return cfg.models_dir / cfg.model.name / f"{cfg.model.alias}.json"


# The MLflow client retries a dead server for minutes by default; a load falls back to the local copy instead.
# setdefault: an operator's own values win.
MLFLOW_FAIL_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                    "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}


def load(cfg: RCAConfig) -> LoadedModel:
    t0 = time.perf_counter()
    for key, value in MLFLOW_FAIL_FAST.items():
        os.environ.setdefault(key, value)
    name, alias = cfg.model.name, cfg.model.alias
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    try:
        version = alias_version(cfg.tracking_uri(), name, alias)
        if version is None:  # a store only the MLflow client can read
            version = str(_mlflow(cfg).MlflowClient().get_model_version_by_alias(name, alias).version)
    except Exception as exc:  # noqa: BLE001 - unreachable server, missing alias, bad credentials: fall back
        return _fallback(cfg, f"registry unavailable ({type(exc).__name__}: {exc})", now, t0)
    local = _copy_dir(cfg, version)
    try:
        bundle = ModelBundle.load(local / "bundle")
    except ModelCorrupt:
        try:
            bundle = _download(cfg, name, version, local)
        except ModelCorrupt:
            raise
        except Exception as exc:  # noqa: BLE001 - S3 down while the registry answered
            return _fallback(cfg, f"cannot download version {version} ({type(exc).__name__}: {exc})", now, t0)
    _pointer(cfg).write_text(json.dumps({"version": version, "updated": now}))
    return LoadedModel(bundle, name, version, alias, "registry", now, _ms(t0))


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


def _download(cfg: RCAConfig, name: str, version: str, local: Path) -> ModelBundle:
    mlflow = _mlflow(cfg)
    shutil.rmtree(local, ignore_errors=True)
    local.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=local.parent) as tmp:
        path = Path(mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=tmp))
        bundle_dir = path / "artifacts" / "bundle"
        ModelBundle.load(bundle_dir)  # validate before it becomes the local copy
        local.mkdir(parents=True)
        shutil.move(str(bundle_dir), local / "bundle")
    return ModelBundle.load(local / "bundle")


def _fallback(cfg: RCAConfig, why: str, now: str, t0: float) -> LoadedModel:
    why = redact(why, cfg.home)  # the tracking URI may carry user:password; paths stay relative to RCA_HOME
    pointer = _pointer(cfg)
    if pointer.is_file():
        version = json.loads(pointer.read_text())["version"]
        try:
            bundle = ModelBundle.load(_copy_dir(cfg, version) / "bundle")
        except ModelCorrupt as exc:
            raise ModelNotReady(redact(f"{why}; the local copy is damaged too ({exc}); run `rca train`",
                                       cfg.home)) from None
        log.warning("%s; using local copy of %s version %s", why, cfg.model.name, version)
        return LoadedModel(bundle, cfg.model.name, version, cfg.model.alias, "local-fallback", now, _ms(t0))
    raise ModelNotReady(f"no model {cfg.model.name}@{cfg.model.alias}: {why}; run `rca train --logs PATH` first")


def list_versions(cfg: RCAConfig) -> list[dict]:
    """Registered versions, newest first, with their aliases, the metrics of the run that made them and what the
    promotion gate decided (``promotion``: promoted | rejected, ``promotion_reason``)."""
    mlflow = _mlflow(cfg)
    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{cfg.model.name}'")
    except Exception as exc:  # noqa: BLE001
        raise RCAError(redact(f"cannot reach the model registry at {cfg.tracking_uri()}: {exc}", cfg.home)) from None
    aliases: dict[str, list[str]] = {}
    try:
        for alias, version in client.get_registered_model(cfg.model.name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
    except Exception:  # noqa: BLE001 - no such model yet
        pass
    out = []
    for v in sorted(versions, key=lambda v: int(v.version), reverse=True):
        metrics = {}
        if v.run_id:
            try:
                metrics = client.get_run(v.run_id).data.metrics
            except Exception:  # noqa: BLE001
                pass
        tags = dict(v.tags or {})
        out.append({"version": str(v.version), "aliases": sorted(aliases.get(str(v.version), [])),
                    "run_id": v.run_id, "created": v.creation_timestamp, "metrics": metrics,
                    "promotion": tags.get("promotion"), "promotion_reason": tags.get("promotion_reason")})
    return out


def promote(cfg: RCAConfig, version: str) -> dict:
    """Point the configured alias at ``version`` (aliases, not the deprecated stages)."""
    mlflow = _mlflow(cfg)
    client = mlflow.MlflowClient()
    try:
        client.get_model_version(cfg.model.name, str(version))
    except Exception:  # noqa: BLE001
        from .errors import InvalidInput

        raise InvalidInput(f"{cfg.model.name} has no version {version} (see `rca models list`)") from None
    client.set_registered_model_alias(cfg.model.name, cfg.model.alias, str(version))
    return {"model_name": cfg.model.name, "alias": cfg.model.alias, "version": str(version)}
