"""Ingested corpora: logs parsed and scored once, kept for fast analysis.

``rca ingest PATH... --corpus NAME`` stores the parsed records and the model's per-record scores as Parquet and
indexes the corpus's templates in Chroma. Analysis of an ingested corpus then reads two Parquet files instead of
parsing and scoring again. Scores record the model version that made them; a corpus scored by another version is
re-scored on first use. The templates' embeddings are kept with the records too (``vectors.parquet``), so a hybrid
analysis of the corpus needs neither Chroma nor its import.

Each write publishes a new immutable *version* (records, scores, vectors, meta together); a reader resolves the
current version once and keeps it for the whole request, so concurrent ingests, re-scores and crashes never show
it a half-written or mixed corpus. ``CorpusStore`` is that contract; ``store(cfg)`` gives the local one.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, ContextManager, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .config import RCAConfig
from .errors import InputNotFound, RCAError
from .retrieve.index import collection_name

log = logging.getLogger(__name__)
FILES = ("records.parquet", "scores.parquet", "vectors.parquet", "meta.json")


@dataclass
class Vectors:
    """The corpus's template embeddings, one unit row per template id."""

    model: str  # the embedder's key (model name and content digest): a query must come from the same model
    ids: list[str]
    matrix: np.ndarray  # float32


@dataclass
class Corpus:
    """One version of a corpus, read whole: later writes publish other versions and never change this one."""

    name: str
    table: pa.Table
    scores: pa.Table | None
    meta: dict[str, Any]
    vectors: Vectors | None = None  # None: ingested without them (before they were kept, or Chroma was down)
    version: str = ""  # the store's id of this version: caches key on it


class CorpusStore(Protocol):
    """Where corpora live. Writers of one name are serialised (StoreBusy when another holds it too long);
    readers never wait and always see one complete version."""

    def publish(self, name: str, table: pa.Table, scores: pa.Table, meta: dict[str, Any],
                vectors: Vectors | None = None) -> str:
        """Write a new version and make it current; returns its id. StorageFull keeps the previous one."""

    def writer(self, name: str) -> ContextManager[Any]:
        """The name's writer lock, held across the block; the object it yields has ``publish(table, scores,
        meta, vectors)``. Work that must match the published version (the Chroma collection) runs inside."""

    def rescore(self, base: Corpus, scores: pa.Table, **meta: Any) -> Corpus | None:
        """``base`` with new scores and meta, published unless another version replaced ``base`` meanwhile
        (then None). Fails fast with StoreBusy: the caller can keep the scores for its own request."""

    def open(self, name: str) -> Corpus:
        """The current version, read whole (InputNotFound when there is none)."""

    def current(self, name: str) -> str | None:
        """The current version's id, cheaply (None when the corpus does not exist)."""

    def list(self) -> list[dict[str, Any]]:
        """Every readable corpus's meta; unreadable ones are logged, left out and named in ``skipped``."""

    skipped: list[dict[str, str]]

    def delete(self, name: str) -> None: ...

    def cleanup(self) -> dict[str, int]:
        """Remove what crashed writers left behind and versions no reader can still hold."""


def store(cfg: RCAConfig) -> CorpusStore:
    """The configured store: S3 when ``store.url`` is s3://… (every replica sees every corpus), else RCA_HOME."""
    s = cfg.store
    if s.url:
        from .store.s3 import S3CorpusStore

        st = S3CorpusStore(s.url, lock_timeout_s=s.lock_timeout_s, grace_s=s.grace_s, lease_s=s.lease_s,
                           client=_S3.get("client"))
        _S3["client"] = st.s3  # one client per process (thread-safe; creating one costs ~50 ms)
        return st
    from .store import LocalCorpusStore

    return LocalCorpusStore(cfg.corpora_dir, lock_timeout_s=s.lock_timeout_s, grace_s=s.grace_s)


_S3: dict[tuple, Any] = {}


# -- one version's files: what any store writes and reads ------------------------------------------------------
def open_current(st: CorpusStore, name: str, read: Callable[[str], Corpus],
                 unreadable: tuple[type[BaseException], ...]) -> Corpus:
    """``name``'s current version through ``read(version_id)``, for any store: a version collected between
    resolving and reading (FileNotFoundError) is retried with the newer one; ``unreadable`` errors mean a
    damaged corpus (ingest it again), anything else propagates (the store's own errors)."""
    for _ in range(5):
        vid = st.current(name)
        if vid is None:
            known = ", ".join(m["name"] for m in st.list()) or "none yet"
            raise InputNotFound(f"no corpus named {name!r} (ingested: {known}); run rca ingest PATH --corpus {name}")
        try:
            return read(vid)
        except FileNotFoundError:
            continue
        except unreadable as exc:
            raise RCAError(f"corpus {name!r} is unreadable ({type(exc).__name__}); ingest it again") from None
    raise RCAError(f"corpus {name!r} kept changing while it was read; retry")


def write_version(directory: Path, table: pa.Table | None, scores: pa.Table, meta: dict[str, Any],
                  vectors: Vectors | None = None) -> None:
    """Write a version's files (``table`` None: the records are already there, e.g. linked from the last one)."""
    directory = Path(directory)
    if table is not None:
        pq.write_table(table, directory / "records.parquet", compression="zstd")
    pq.write_table(scores, directory / "scores.parquet", compression="zstd")
    if vectors is not None and len(vectors.ids):
        save_vectors(directory, vectors)
    (directory / "meta.json").write_text(json.dumps(meta, indent=1))


def stamp_meta(name: str, table: pa.Table, meta: dict[str, Any]) -> dict[str, Any]:
    return {**meta, "name": name, "records": table.num_rows,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}


def read_version(directory: Path, name: str, version: str) -> Corpus:
    """Read a version whole. Which optional files it has is decided once, from its listing: a version removed
    mid-read then raises FileNotFoundError (the caller reads the newer one) instead of losing its scores."""
    d = Path(directory)
    present = set(os.listdir(d))
    meta = json.loads((d / "meta.json").read_text())
    table = pq.read_table(d / "records.parquet")
    scores = pq.read_table(d / "scores.parquet") if "scores.parquet" in present else None
    vectors = load_vectors(d, required=True) if "vectors.parquet" in present else None
    return Corpus(name, table, scores, meta, vectors, version)


def save_vectors(directory: Path, vectors: Vectors) -> None:
    m = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
    col = pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), m.shape[1])
    t = pa.table({"template_id": pa.array(vectors.ids, pa.string()), "vector": col},
                 metadata={"embedding_model": vectors.model})
    pq.write_table(t, Path(directory) / "vectors.parquet")


def load_vectors(directory: Path, *, required: bool = False) -> Vectors | None:
    p = Path(directory) / "vectors.parquet"
    if not required and not p.is_file():
        return None
    t = pq.read_table(p)
    model = (t.schema.metadata or {}).get(b"embedding_model", b"").decode()
    col = t["vector"].combine_chunks()
    dim = col.type.list_size
    matrix = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    return Vectors(model, t["template_id"].to_pylist(), matrix)


# -- the calls the shells use -----------------------------------------------------------------------------------
def corpus_dir(cfg: RCAConfig, name: str) -> Path:
    """The corpus's directory (validates the name); its versions live inside."""
    collection_name(name)
    return cfg.corpora_dir / name


def save(cfg: RCAConfig, name: str, table: pa.Table, scores: pa.Table, meta: dict[str, Any],
         vectors: Vectors | None = None) -> str:
    return store(cfg).publish(name, table, scores, meta, vectors)


def load(cfg: RCAConfig, name: str) -> Corpus:
    return store(cfg).open(name)


def stamp(cfg: RCAConfig, name: str) -> str:
    """The current version's id ("" when the corpus does not exist): changes whenever the corpus is written."""
    return store(cfg).current(name) or ""


def rescore(cfg: RCAConfig, base: Corpus, scores: pa.Table, **meta: Any) -> Corpus | None:
    return store(cfg).rescore(base, scores, **meta)


def list_names(cfg: RCAConfig) -> list[str]:
    return [m["name"] for m in list_corpora(cfg)]


def list_corpora(cfg: RCAConfig) -> list[dict[str, Any]]:
    return store(cfg).list()


def listing(cfg: RCAConfig) -> dict[str, list[dict[str, Any]]]:
    """The readable corpora, and the ones left out with why (an operator must see a corpus that vanished)."""
    st = store(cfg)
    rows = st.list()
    return {"corpora": rows, "skipped": list(st.skipped)}


def delete(cfg: RCAConfig, name: str) -> None:
    store(cfg).delete(name)


def cleanup(cfg: RCAConfig) -> dict[str, int]:
    """Run at start: removes staging left by killed writers and versions nobody reads. Never fails the caller."""
    try:
        return store(cfg).cleanup()
    except OSError as exc:
        log.warning("corpus cleanup skipped: %s", exc.strerror or exc)
        return {}
