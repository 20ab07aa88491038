"""``train``: parse (cached), build sessions, hold out 10% of them, train with progress, evaluate, package the
bundle as one MLflow pyfunc model, register it and point the alias at the new version.

MLflow is wherever the config says: a local sqlite store under RCA_HOME by default, or a tracking server
(``MLFLOW_TRACKING_URI``) with artifacts in S3 (``MLFLOW_S3_ENDPOINT_URL`` for S3-compatible stores) in production.
"""

from __future__ import annotations

import json
import shutil
import tempfile
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

MIN_RECORDS = 200
MIN_SESSIONS = 10
# what loading and scoring the logged model needs: the LSTM runs in numpy from lstm.npz, so no TensorFlow
PIP_REQUIREMENTS = ["scikit-learn==1.9.1", "pyarrow==25.0.1", "numpy==2.3.5"]


def train(paths: Iterable, cfg: RCAConfig, hp: DeepLogConfig, *,
          on_epoch: Optional[Callable[[int, dict], None]] = None) -> dict:
    table = Parser(cfg).parse(list(paths)).table
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
    return _register(cfg, bundle, hp, metrics, table.num_rows, len(sessions))


def _register(cfg: RCAConfig, bundle: ModelBundle, hp: DeepLogConfig, metrics: dict, records: int,
              n_sessions: int) -> dict:
    mlflow = registry._mlflow(cfg)
    from openstack_rca.score.pyfunc import DeepLogPyfunc

    exp = mlflow.get_experiment_by_name(cfg.model.experiment)
    if exp is None:
        location = cfg.model.artifact_location or None
        if location is None and cfg.tracking_uri().startswith("sqlite:"):
            location = (cfg.home / "mlflow" / "artifacts").as_uri()  # embedded store: artifacts beside it
        # with a tracking server and no explicit location, the server's --artifacts-destination (S3) applies
        mlflow.create_experiment(cfg.model.experiment, artifact_location=location)
    mlflow.set_experiment(cfg.model.experiment)
    with tempfile.TemporaryDirectory() as tmp, mlflow.start_run() as run:
        mlflow.log_params({**hp.to_dict(), "records": records, "sessions": n_sessions})
        mlflow.log_metrics(metrics)
        info = mlflow.pyfunc.log_model(
            name="model", python_model=DeepLogPyfunc(), artifacts={"bundle": str(bundle.save(f"{tmp}/bundle"))},
            registered_model_name=cfg.model.name, pip_requirements=PIP_REQUIREMENTS,
        )
        version = str(info.registered_model_version)
        client = mlflow.MlflowClient()
        client.set_registered_model_alias(cfg.model.name, cfg.model.alias, version)
        local = registry._copy_dir(cfg, version) / "bundle"
        shutil.rmtree(local, ignore_errors=True)
        local.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(f"{tmp}/bundle", local)
        registry._pointer(cfg).write_text(json.dumps({"version": version}))
        return {
            "model_name": cfg.model.name, "version": version, "alias": cfg.model.alias,
            "model_uri": f"models:/{cfg.model.name}@{cfg.model.alias}", "run_id": run.info.run_id,
            "metrics": metrics,
        }
