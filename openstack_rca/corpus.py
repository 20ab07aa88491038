"""Ingested corpora: logs parsed and scored once, kept for fast analysis.

``rca ingest PATH... --corpus NAME`` stores the parsed records and the model's per-record scores as Parquet under
RCA_HOME/corpora/NAME and indexes the corpus's templates in Chroma. Analysis of an ingested corpus then reads two
Parquet files instead of parsing and scoring again. Scores record the model version that made them; a corpus
scored by another version is re-scored on first use. The templates' embeddings are kept with the records too
(``vectors.parquet``), so a hybrid analysis of the corpus needs neither Chroma nor its import.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .config import RCAConfig
from .errors import InputNotFound
from .retrieve.index import collection_name


@dataclass
class Vectors:
    """The corpus's template embeddings, one unit row per template id."""

    model: str  # the embedder's key (model name and content digest): a query must come from the same model
    ids: list[str]
    matrix: np.ndarray  # float32


@dataclass
class Corpus:
    name: str
    table: pa.Table
    scores: pa.Table | None
    meta: dict[str, Any]
    vectors: Vectors | None = None  # None: ingested without them (before they were kept, or Chroma was down)


def corpus_dir(cfg: RCAConfig, name: str) -> Path:
    collection_name(name)  # validates the name
    return cfg.corpora_dir / name


def save(cfg: RCAConfig, name: str, table: pa.Table, scores: pa.Table, meta: dict[str, Any],
         vectors: Vectors | None = None) -> Path:
    d = corpus_dir(cfg, name)
    tmp = d.with_name(d.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    pq.write_table(table, tmp / "records.parquet", compression="zstd")
    save_scores(tmp, scores)
    if vectors is not None and len(vectors.ids):
        save_vectors(tmp, vectors)
    meta = {**meta, "name": name, "records": table.num_rows,
            "updated": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
    shutil.rmtree(d, ignore_errors=True)
    tmp.rename(d)
    return d


def save_scores(directory: Path, scores: pa.Table) -> None:
    pq.write_table(scores, Path(directory) / "scores.parquet", compression="zstd")


def save_vectors(directory: Path, vectors: Vectors) -> None:
    m = np.ascontiguousarray(vectors.matrix, dtype=np.float32)
    col = pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), m.shape[1])
    t = pa.table({"template_id": pa.array(vectors.ids, pa.string()), "vector": col},
                 metadata={"embedding_model": vectors.model})
    pq.write_table(t, Path(directory) / "vectors.parquet")


def load_vectors(directory: Path) -> Vectors | None:
    p = Path(directory) / "vectors.parquet"
    if not p.is_file():
        return None
    t = pq.read_table(p)
    model = (t.schema.metadata or {}).get(b"embedding_model", b"").decode()
    col = t["vector"].combine_chunks()
    dim = col.type.list_size
    matrix = col.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False).reshape(-1, dim)
    return Vectors(model, t["template_id"].to_pylist(), matrix)


def load(cfg: RCAConfig, name: str) -> Corpus:
    d = corpus_dir(cfg, name)
    if not (d / "meta.json").is_file():
        known = ", ".join(list_names(cfg)) or "none yet"
        raise InputNotFound(f"no corpus named {name!r} (ingested: {known}); run rca ingest PATH --corpus {name}")
    meta = json.loads((d / "meta.json").read_text())
    table = pq.read_table(d / "records.parquet")
    scores = pq.read_table(d / "scores.parquet") if (d / "scores.parquet").is_file() else None
    return Corpus(name, table, scores, meta, load_vectors(d))


def stamp(cfg: RCAConfig, name: str) -> float:
    """Changes whenever the corpus is written (0.0 when it does not exist)."""
    p = corpus_dir(cfg, name) / "meta.json"
    try:
        return p.stat().st_mtime_ns
    except FileNotFoundError:
        return 0.0


def update_meta(cfg: RCAConfig, name: str, **changes: Any) -> None:
    p = corpus_dir(cfg, name) / "meta.json"
    meta = json.loads(p.read_text())
    meta.update(changes)
    p.write_text(json.dumps(meta, indent=1))


def list_names(cfg: RCAConfig) -> list[str]:
    if not cfg.corpora_dir.is_dir():
        return []
    return sorted(p.parent.name for p in cfg.corpora_dir.glob("*/meta.json"))


def list_corpora(cfg: RCAConfig) -> list[dict[str, Any]]:
    return [json.loads((cfg.corpora_dir / n / "meta.json").read_text()) for n in list_names(cfg)]
