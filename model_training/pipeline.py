"""``train``: parse (cached), build sessions, hold out 10% of them, train with progress, evaluate, package the
bundle as one self-contained MLflow pyfunc model (signature, input example, its own code and pinned requirements,
the training logs as an MLflow dataset), register it as a new version, and move the alias to it only through the
promotion gate (``promotion``).

MLflow is wherever the config says: a local sqlite store under RCA_HOME by default, or a tracking server
(``MLFLOW_TRACKING_URI``) with artifacts in S3 (``MLFLOW_S3_ENDPOINT_URL`` for S3-compatible stores) in production.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from openstack_rca import registry
from openstack_rca.config import RCAConfig
from openstack_rca.errors import InvalidInput
from openstack_rca.parse import Parser
from openstack_rca.score import Vocabulary, build_sessions, windows
from openstack_rca.score.anomaly import score
from openstack_rca.score.bundle import ModelBundle
from openstack_rca.score.deeplog import DeepLogConfig, fit, next_probs

from . import lineage, packaging, promotion

MIN_RECORDS = 200
MIN_SESSIONS = 10


def train(paths: Iterable, cfg: RCAConfig, hp: DeepLogConfig, *,
          on_epoch: Optional[Callable[[int, dict], None]] = None, promote: Optional[bool] = None) -> dict:
    """``promote``: None = the gate decides, True = always move the alias, False = never."""
    paths = list(paths)
    parsed = Parser(cfg).parse(paths)
    table = parsed.table
    sessions = build_sessions(table)
    if table.num_rows < MIN_RECORDS or len(sessions) < MIN_SESSIONS:
        raise InvalidInput(
            f"too little data to train: {table.num_rows} records in {len(sessions)} sessions; need at least "
            f"{MIN_RECORDS} records in {MIN_SESSIONS} sessions (point --logs at more logs, e.g. a day of them)"
        )
    rng = np.random.default_rng(hp.seed)
    held = np.zeros(len(sessions), bool)
    held[rng.permutation(len(sessions))[: max(1, len(sessions) // 10)]] = True
    session_of = np.repeat(np.arange(len(sessions)), sessions.lengths())  # per event, in session order
    train_rows = sessions.order[~held[session_of]]
    tids = table["template_id"].to_pylist()
    vocab = Vocabulary.build([tids[i] for i in train_rows], dict(zip(tids, table["template"].to_pylist())))
    encoded = vocab.encode(tids)
    X, y, _ = windows(sessions, encoded, hp.window)
    tr, ho = ~held[session_of], held[session_of]
    model, history = fit(X[tr], y[tr], len(vocab), hp, validation=(X[ho], y[ho]), on_epoch=on_epoch)

    s = score(next_probs(model, X[ho]), y[ho], hp.top_g)
    flagged_sessions = np.unique(session_of[ho][s.anomalous])
    metrics = {
        "loss": history["loss"][-1],
        "val_loss": history["val_loss"][-1],
        "top_g_accuracy": history["val_top_g_accuracy"][-1],
        "event_false_positive_rate": float(s.anomalous.mean()) if len(s.anomalous) else 0.0,
        "session_false_positive_rate": len(flagged_sessions) / max(int(held.sum()), 1),
        "vocabulary": float(len(vocab)),
        "train_windows": float(tr.sum()),
    }
    counts = np.bincount(encoded[train_rows], minlength=len(vocab))
    from sklearn.feature_extraction.text import TfidfVectorizer

    messages = table["message"].to_pylist()
    tfidf = TfidfVectorizer(sublinear_tf=True, max_features=50_000, token_pattern=r"(?u)\b[A-Za-z_][A-Za-z_]+\b")
    tfidf.fit([messages[i] for i in train_rows])
    bundle = ModelBundle(model, vocab, counts, tfidf, hp)
    keys = np.empty(table.num_rows, object)
    keys[sessions.order] = np.repeat(np.array(sessions.keys, object), sessions.lengths())
    data = {"table": table, "keys": keys, "held": held_rows(table.num_rows, sessions, held),
            "files": lineage.file_digests(parsed.files), "paths": paths, "sessions": len(sessions)}
    return _register(cfg, bundle, hp, metrics, data, promote)


def held_rows(n: int, sessions, held: np.ndarray) -> np.ndarray:
    """Per table row: does its session belong to the held-out set."""
    out = np.zeros(n, bool)
    out[sessions.order] = np.repeat(held, sessions.lengths())
    return out


def _register(cfg: RCAConfig, bundle: ModelBundle, hp: DeepLogConfig, metrics: dict, data: dict,
              promote: Optional[bool]) -> dict:
    mlflow = registry._mlflow(cfg)
    from openstack_rca.score.pyfunc import DeepLogPyfunc

    table = data["table"]
    exp = mlflow.get_experiment_by_name(cfg.model.experiment)
    if exp is None:
        location = cfg.model.artifact_location or None
        if location is None and cfg.tracking_uri().startswith("sqlite:"):
            location = (cfg.home / "mlflow" / "artifacts").as_uri()  # embedded store: artifacts beside it
        # with a tracking server and no explicit location, the server's --artifacts-destination (S3) applies
        mlflow.create_experiment(cfg.model.experiment, artifact_location=location)
    mlflow.set_experiment(cfg.model.experiment)
    client = mlflow.MlflowClient()
    champion = _champion(client, cfg)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        mlflow.log_params({**hp.to_dict(), "records": table.num_rows, "sessions": data["sessions"],
                           "files": len(data["files"])})
        mlflow.log_metrics(metrics)
        digest = lineage.log_training_data(mlflow, table, data["keys"], data["held"], data["files"], data["paths"])
        info = mlflow.pyfunc.log_model(
            name="model", python_model=DeepLogPyfunc(), artifacts={"bundle": str(bundle.save(f"{tmp}/bundle"))},
            code_paths=[str(packaging.stage_code(Path(tmp) / "code"))],
            input_example=packaging.input_example(table), registered_model_name=cfg.model.name,
            pip_requirements=packaging.pip_requirements(),
        )
        version = str(info.registered_model_version)
        decision = promotion.decide(metrics, champion[1], champion[0], cfg.model.promotion_tolerance, promote)
        for key, value in {"promotion": decision.tag, "promotion_reason": decision.reason,
                           "dataset_digest": digest}.items():
            client.set_model_version_tag(cfg.model.name, version, key, value)
        mlflow.set_tags({"promotion": decision.tag, "promotion_reason": decision.reason})
        local = registry._copy_dir(cfg, version) / "bundle"
        shutil.rmtree(local, ignore_errors=True)
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(f"{tmp}/bundle", local)
        if decision.promote:
            client.set_registered_model_alias(cfg.model.name, cfg.model.alias, version)
            registry._pointer(cfg).write_text(json.dumps({"version": version}))
        serving = version if decision.promote else champion[0]
        return {
            "model_name": cfg.model.name, "version": version, "alias": cfg.model.alias,
            "model_uri": f"models:/{cfg.model.name}/{version}",
            "alias_uri": f"models:/{cfg.model.name}@{cfg.model.alias}",
            "promoted": decision.promote, "promotion": decision.tag, "promotion_reason": decision.reason,
            "champion_version": serving, "previous_champion": champion[0], "run_id": run.info.run_id,
            "dataset_digest": digest, "metrics": metrics,
        }


def _champion(client, cfg: RCAConfig) -> tuple[Optional[str], Optional[dict]]:
    """(version, its run's metrics) of the version the alias points at now; (None, None) before the first."""
    from mlflow.exceptions import MlflowException

    try:
        current = client.get_model_version_by_alias(cfg.model.name, cfg.model.alias)
    except MlflowException as exc:  # no such model, or no such alias yet: the first version is promoted
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None, None
        raise  # an unreachable registry must not look like an empty one
    metrics: dict = {}
    if current.run_id:
        try:
            metrics = dict(client.get_run(current.run_id).data.metrics)
        except Exception:  # noqa: BLE001 - a deleted run: the gate says the champion has no metrics
            pass
    return str(current.version), metrics
