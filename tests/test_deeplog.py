"""The DeepLog model learns normal OpenStack workflows and is surprised by an injected fault."""

from __future__ import annotations

import numpy as np
import pytest

from openstack_rca import simulate
from openstack_rca.errors import InvalidInput
from openstack_rca.parse import Parser
from openstack_rca.score import Vocabulary, build_sessions, windows
from openstack_rca.score.anomaly import importance, rarity, score, severity

pytest.importorskip("keras")
from openstack_rca.score import deeplog  # noqa: E402

CFG = deeplog.DeepLogConfig(window=6, embed_dim=16, hidden=64, layers=1, epochs=10, batch_size=256, top_g=15)


def parsed(cfg, path):
    return Parser(cfg, use_cache=False).parse([path]).table


def encode(table, vocab, h):
    s = build_sessions(table)
    return windows(s, vocab.encode(table["template_id"].to_pylist()), h)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from openstack_rca.config import load

    home = tmp_path_factory.mktemp("home")
    cfg = load(env={"RCA_HOME": str(home)})
    simulate.simulate("none", home / "normal", lines=6000, seed=1)
    normal = parsed(cfg, home / "normal")
    vocab = Vocabulary.build(normal["template_id"].to_pylist())
    X, y, _ = encode(normal, vocab, CFG.window)
    model, history = deeplog.fit(X, y, len(vocab), CFG)
    return cfg, home, vocab, model, history


def test_learns_normal_workflows(trained):
    cfg, home, vocab, model, history = trained
    assert history["loss"][-1] < history["loss"][0]
    simulate.simulate("none", home / "held", lines=1500, seed=2)
    held_out = parsed(cfg, home / "held")
    X, y, _ = encode(held_out, vocab, CFG.window)
    s = score(deeplog.next_probs(model, X), y, CFG.top_g)
    assert s.anomalous.mean() < 0.15  # few false alarms on normal traffic it never saw


def test_injected_fault_is_more_surprising_than_normal_traffic(trained):
    cfg, home, vocab, model, _ = trained
    truth = simulate.simulate("libvirt_domain_failure", home / "fault", lines=3000, seed=4)
    table = parsed(cfg, home / "fault")
    X, y, rows = encode(table, vocab, CFG.window)
    s = score(deeplog.next_probs(model, X), y, CFG.top_g)
    anomaly = np.empty(table.num_rows)
    anomaly[rows] = s.anomaly
    sources = table["source"].to_pylist()
    lines = table["line_no"].to_pylist()
    cause = [i for i, (src, ln) in enumerate(zip(sources, lines))
             if any(src.endswith(r["file"]) and ln == r["line"] for r in truth["root_cause"])]
    assert cause and anomaly[cause].mean() > np.median(anomaly) + 0.2


def test_dedup_prediction_equals_plain_prediction(trained):
    _, _, vocab, model, _ = trained
    rng = np.random.default_rng(0)
    X = rng.integers(0, len(vocab), size=(300, CFG.window)).astype(np.int32)
    X = np.concatenate([X, X[:100]])
    np.testing.assert_allclose(deeplog.next_probs(model, X), model.predict(X, verbose=0), rtol=1e-5, atol=1e-6)


def test_scores_and_importance_shapes_and_bounds():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]])
    s = score(probs, np.array([0, 0]), top_g=1)
    assert s.rank.tolist() == [0, 1] and s.anomalous.tolist() == [False, True]
    assert 0 <= s.anomaly.min() and s.anomaly.max() <= 1 and s.anomaly[1] > s.anomaly[0]
    assert s.expected[1, 0] == 2
    imp = importance(s.anomaly, severity(["INFO", "ERROR"]), rarity(np.array([100, 1])))
    assert imp[1] > imp[0]


def test_top_k_orders_like_a_full_sort_and_breaks_ties_by_index():
    from openstack_rca.score.anomaly import top_k

    rng = np.random.default_rng(2)
    probs = rng.random((200, 50)).astype(np.float32)
    np.testing.assert_array_equal(top_k(probs, 3), np.argsort(-probs, axis=1)[:, :3])
    tied = np.array([[0.1, 0.4, 0.4, 0.1]])
    assert top_k(tied, 3).tolist() == [[1, 2, 0]] and top_k(tied, 9).tolist() == [[1, 2, 0, 3]]
    assert top_k(np.zeros((0, 4)), 2).shape == (0, 2)


def test_bad_model_config_says_what_to_fix():
    with pytest.raises(InvalidInput, match="window must be >= 1"):
        deeplog.DeepLogConfig(window=0)


def test_unique_rows_matches_numpy():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 4, size=(2000, 3)).astype(np.int32)
    uniq, inv = deeplog.unique_rows(a)
    np.testing.assert_array_equal(uniq[inv], a)
    assert len(uniq) == len(np.unique(a, axis=0))
