"""retrieve: the lean embedding path against sentence-transformers, the shared embedding cache, and similarity
without Chroma."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from openstack_rca.retrieve import Similarity, template_texts
from openstack_rca.retrieve.cache import EmbeddingCache

TEXTS = ["instances fail to boot since 14:00", "AMQP server on <*> is unreachable", "Instance failed to spawn",
         "x" * 3000, " ".join(f"frame{i} in nova/compute/manager.py" for i in range(200))]
NEW = ["Failed to attach volume to instance", "No valid host was found. There are not enough hosts available."]
PROBE = """
import json, sys
import numpy as np
from openstack_rca.retrieve.embeddings import Embedder
e = Embedder(cache_dir=sys.argv[1])
old = e.embed(json.loads(sys.argv[2]))
computed_old = e.computed
new = e.embed(json.loads(sys.argv[3]))
print(json.dumps({"old": old.tolist(), "new": new.tolist(), "computed_old": computed_old, "computed": e.computed,
                  "backend": e.backend,
                  "heavy": sorted(m for m in ("torch", "sentence_transformers", "transformers") if m in sys.modules)}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One export + check in a private cache dir, and sentence-transformers' own vectors for the same texts."""
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("onnxruntime")
    from openstack_rca.retrieve.embeddings import Embedder

    d = tmp_path_factory.mktemp("emb-cache")
    fast = Embedder(backend="onnx", cache_dir=d)
    ref = Embedder(backend="torch", cache_dir=tmp_path_factory.mktemp("ref-cache"))
    return d, fast, fast.embed(TEXTS), ref


def test_lean_embeddings_equal_sentence_transformers(exported):
    d, fast, a, ref = exported
    b = ref.embed(TEXTS)
    assert fast.backend == "onnx" and ref.backend == "torch"
    assert a.shape == (len(TEXTS), 384) and np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.abs(a - b).max() < 1e-4
    assert a[0] @ a[2] > a[0] @ a[1]  # meaning, not spelling
    marker = json.loads(fast.marker_path.read_text())
    assert marker["backend"] == "onnx" and marker["digest"] == fast.digest and marker["max_diff"] < 1e-4
    assert marker["tokenizer"]["max_seq_length"] == ref.model.max_seq_length  # not tokenizer.json's own 128
    assert {"onnxruntime", "tokenizers", "sentence-transformers"} <= set(marker["versions"])
    assert fast.onnx_path.is_file() and not list(d.glob("*.tmp"))


def test_a_later_process_needs_neither_torch_nor_the_model_for_cached_texts(exported):
    d, fast, a, ref = exported
    r = subprocess.run([sys.executable, "-c", PROBE, str(d), json.dumps(TEXTS), json.dumps(NEW)],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["heavy"] == [], "the lean path imported " + ", ".join(out["heavy"])
    assert out["computed_old"] == 0 and out["computed"] == len(NEW) and out["backend"] == "onnx"
    assert np.array_equal(np.asarray(out["old"], np.float32), a)  # the cache gives back the very same vectors
    assert np.abs(np.asarray(out["new"], np.float32) - ref.embed(NEW)).max() < 1e-4


def test_a_torch_verdict_is_not_retried(exported, tmp_path, monkeypatch):
    """A model the lean path cannot reproduce runs on sentence-transformers, without a new export each time."""
    from openstack_rca.retrieve import export
    from openstack_rca.retrieve.embeddings import Embedder

    e = Embedder(cache_dir=tmp_path)
    verdict = {"digest": e.digest, "backend": "torch", "versions": export.versions()}
    e.marker_path.write_text(json.dumps(verdict))
    monkeypatch.setattr(export, "_export", lambda *a: pytest.fail("exported again"))
    v = e.embed(NEW[:1])
    assert e.backend == "torch" and np.abs(v - exported[3].embed(NEW[:1])).max() < 1e-4


def test_cache_round_trip(tmp_path):
    c = EmbeddingCache(tmp_path / "v.sqlite3")
    vecs = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    c.put("m-1", ["a", "b", "c"], vecs)
    got = c.get("m-1", ["c", "a", "zz", "a"])
    assert set(got) == {"a", "c"} and np.array_equal(got["a"], vecs[0]) and np.array_equal(got["c"], vecs[2])
    assert c.get("m-2", ["a"]) == {}  # another model's vectors are another model's
    assert c.get("m-1", ["a"], dim=4) == {}  # a vector of the wrong size is not used
    other = EmbeddingCache(tmp_path / "v.sqlite3")  # a second process on the same file
    assert np.array_equal(other.get("m-1", ["b"])["b"], vecs[1])


def test_an_unusable_cache_costs_only_speed(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    c = EmbeddingCache(tmp_path / "file" / "v.sqlite3")
    c.put("m", ["a"], np.ones((1, 4), np.float32))
    assert c.get("m", ["a"]) == {}


class FakeEmbedder:
    """Counts what it embeds; vectors are a fixed function of the text."""

    def __init__(self):
        self.seen: list[str] = []

    def embed(self, texts):
        self.seen.extend(texts)
        out = np.array([[len(t), t.count("a"), 1.0] for t in texts], np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_similarity_embeds_only_what_it_is_asked():
    emb = FakeEmbedder()
    q = emb.embed(["aaa"])[0]
    emb.seen.clear()
    texts = {"t1": "a volume", "t2": "banana", "t3": "ok"}
    sim = Similarity(q, embedder=emb, texts=texts)
    got = sim(["t2", "t9"])
    assert set(got) == {"t2"} and emb.seen == ["banana"] and sim.asked == ["t2", "t9"]
    assert got["t2"] == pytest.approx(float(emb.embed(["banana"])[0] @ q))
    stored = Similarity(q, ids=list(texts), vectors=emb.embed(list(texts.values())))
    assert stored(["t1", "t3"]) == pytest.approx({t: sim([t])[t] for t in ("t1", "t3")})
    with pytest.raises(ValueError):
        Similarity(q)


def test_template_texts_one_per_template():
    t = pa.table({"template_id": ["a", "b", "a"],
                  "template": ["Instance <*> failed to spawn", "AMQP    server <*> unreachable", "x"]})
    assert template_texts(t) == {"a": "Instance failed to spawn", "b": "AMQP server unreachable"}
    assert template_texts(t.slice(0, 0)) == {}


def test_the_cache_is_bounded_and_keeps_the_newest(tmp_path):
    c = EmbeddingCache(tmp_path / "v.sqlite3", max_vectors=100)
    for batch in range(12):  # 120 vectors written, 10 at a time
        texts = [f"t{batch}-{i}" for i in range(10)]
        c.put("m", texts, np.full((10, 4), batch, np.float32))
    info = c.info()
    assert 90 <= info["vectors"] <= 100 and info["max_vectors"] == 100 and info["bytes"] > 0
    assert c.get("m", [f"t11-{i}" for i in range(10)]).keys() == {f"t11-{i}" for i in range(10)}  # newest kept
    assert c.get("m", ["t0-0", "t1-0"]) == {}  # the oldest went first
    assert c.clear() == info["vectors"] and c.info()["vectors"] == 0


def test_a_cache_from_before_the_bound_is_upgraded_in_place(tmp_path):
    import sqlite3

    path = tmp_path / "v.sqlite3"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE vectors (model TEXT NOT NULL, key BLOB NOT NULL, vec BLOB NOT NULL, "
                 "PRIMARY KEY (model, key)) WITHOUT ROWID")
    old = EmbeddingCache(tmp_path / "seed.sqlite3")
    old.put("m", ["kept"], np.ones((1, 4), np.float32))  # the same key and blob an old process wrote
    for row in sqlite3.connect(tmp_path / "seed.sqlite3").execute("SELECT model, key, vec FROM vectors"):
        conn.execute("INSERT INTO vectors VALUES (?, ?, ?)", row)
    conn.commit()
    conn.close()
    c = EmbeddingCache(path, max_vectors=3)
    assert c.get("m", ["kept"])["kept"].tolist() == [1.0] * 4  # still read after the upgrade
    for t in ("a", "b", "c"):  # the fourth row is over the bound: down to 90% of 3, the oldest first
        c.put("m", [t], np.zeros((1, 4), np.float32))
    assert set(c.get("m", ["kept", "a", "b", "c"])) == {"b", "c"}  # the old row counted as the oldest
