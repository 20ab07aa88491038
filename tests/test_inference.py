"""The numpy forward pass scores exactly as the Keras model it was exported from, and loading a bundle to score
needs neither TensorFlow, scikit-learn nor MLflow."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from openstack_rca import simulate
from openstack_rca.parse import Parser
from openstack_rca.score import Vocabulary, build_sessions, windows
from openstack_rca.score.bundle import ModelBundle, ModelCorrupt
from openstack_rca.score.forward import Forward

pytest.importorskip("keras")
pytest.importorskip("sklearn")
from openstack_rca.score import deeplog  # noqa: E402

CFG = deeplog.DeepLogConfig(window=5, embed_dim=8, hidden=16, layers=2, epochs=3, batch_size=256)
HEAVY = ("tensorflow", "keras", "sklearn", "joblib", "mlflow")


def parsed(cfg, path):
    return Parser(cfg, use_cache=False).parse([path]).table


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small two-layer model trained for real on normal traffic, a fault to score, and the bundle on disk."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from openstack_rca.config import load

    home = tmp_path_factory.mktemp("home")
    cfg = load(env={"RCA_HOME": str(home)})
    simulate.simulate("none", home / "normal", lines=3000, seed=1)
    simulate.simulate("compute_disk_full", home / "fault", lines=1500, seed=2)
    normal = parsed(cfg, home / "normal")
    vocab = Vocabulary.build(normal["template_id"].to_pylist())
    X, y, _ = windows(build_sessions(normal), vocab.encode(normal["template_id"].to_pylist()), CFG.window)
    model, _ = deeplog.fit(X, y, len(vocab), CFG)
    tfidf = TfidfVectorizer().fit(normal["message"].to_pylist())
    counts = np.bincount(vocab.encode(normal["template_id"].to_pylist()), minlength=len(vocab))
    bundle_dir = ModelBundle(model, vocab, counts, tfidf, CFG).save(home / "bundle")
    return cfg, home, vocab, model, bundle_dir


def test_numpy_probabilities_equal_keras_on_held_out_windows(trained):
    cfg, home, vocab, model, bundle_dir = trained
    fault = parsed(cfg, home / "fault")
    X, _, _ = windows(build_sessions(fault), vocab.encode(fault["template_id"].to_pylist()), CFG.window)
    rng = np.random.default_rng(0)
    X = np.concatenate([X, rng.integers(0, len(vocab), size=(500, CFG.window)).astype(np.int32)])  # PAD, UNK too
    forward = Forward.load(bundle_dir / "lstm.npz")
    mine, theirs = forward.probs(X), np.asarray(model.predict(X, batch_size=4096, verbose=0))
    assert mine.dtype == np.float32 and mine.shape == theirs.shape
    np.testing.assert_allclose(mine, theirs, rtol=0, atol=1e-5)
    np.testing.assert_allclose(mine.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(deeplog.next_probs(forward, X), deeplog.next_probs(model, X), rtol=0, atol=1e-5)
    assert deeplog.next_probs(forward, X[:0]).shape == (0, len(vocab))


def test_scoring_a_table_gives_keras_anomaly_and_importance(trained):
    cfg, home, vocab, model, bundle_dir = trained
    numpy_bundle = ModelBundle.load(bundle_dir)
    keras_bundle = dataclasses.replace(numpy_bundle, model=model)
    table = parsed(cfg, home / "fault")
    mine, theirs = numpy_bundle.score(table), keras_bundle.score(table)
    for col in ("anomaly", "importance"):
        np.testing.assert_allclose(mine[col].to_numpy(), theirs[col].to_numpy(), rtol=0, atol=1e-5)
    assert mine["anomalous"].equals(theirs["anomalous"]) and mine["expected"].equals(theirs["expected"])


def test_bundles_without_weights_convert_once(trained, tmp_path):
    _, _, vocab, model, bundle_dir = trained
    old = tmp_path / "old"
    old.mkdir()
    for f in bundle_dir.iterdir():
        if f.name != "lstm.npz":
            (old / f.name).write_bytes(f.read_bytes())
    converted = ModelBundle.load(old)  # a bundle saved before lstm.npz existed: through Keras, once
    assert (old / "lstm.npz").is_file() and isinstance(converted.model, Forward)
    X = np.random.default_rng(1).integers(0, len(vocab), size=(50, CFG.window)).astype(np.int32)
    np.testing.assert_array_equal(ModelBundle.load(old).model.probs(X), converted.model.probs(X))
    (old / "lstm.npz").write_bytes(b"garbage")
    with pytest.raises(ModelCorrupt, match="unreadable"):
        ModelBundle.load(old)
    (old / "lstm.npz").unlink()
    (old / "lstm.keras").unlink()
    with pytest.raises(ModelCorrupt, match="lacks lstm.npz"):
        ModelBundle.load(old)


def test_export_refuses_layers_the_numpy_pass_does_not_compute():
    keras = deeplog._keras()
    model = keras.Sequential([keras.Input(shape=(4,), dtype="int32"), keras.layers.Embedding(6, 3),
                              keras.layers.LSTM(5, activation="relu"), keras.layers.Dense(6, activation="softmax")])
    with pytest.raises(ValueError, match="activation"):
        Forward.from_keras(model)


def test_loading_and_scoring_import_no_ml_framework(trained):
    """A cold process loads the bundle and scores with numpy alone; the TF-IDF scorer comes when first used."""
    cfg, home, _, _, bundle_dir = trained
    code = (
        "import json, sys; from openstack_rca.config import load; from openstack_rca.parse import Parser;"
        "from openstack_rca.score.bundle import ModelBundle;"
        f"b = ModelBundle.load({str(bundle_dir)!r});"
        f"t = Parser(load(), use_cache=False).parse([{str(home / 'fault')!r}]).table; s = b.score(t);"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules];"
        "rel = b.relevance('no space left on device', ['No space left on device', 'Claim successful']);"
        "print(json.dumps({'heavy': heavy, 'rows': s.num_rows, 'rel': rel.tolist(),"
        " 'sklearn_after': 'sklearn' in sys.modules}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["heavy"] == [] and res["rows"] > 0
    assert res["sklearn_after"] and res["rel"][0] > res["rel"][1]
