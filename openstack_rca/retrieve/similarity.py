"""The issue's cosine similarity to log templates, computed only for the templates the diagnosis asks about.

A ``Similarity`` is the semantic function ``diagnose`` takes: template ids in, cosine per id out. For logs given with
the question the templates are embedded on demand (most come from the shared embedding cache); for an ingested
corpus the vectors stored with it at ingest are read. Either way it is the dot product of unit vectors, the same
number Chroma's cosine distance gave as 1 - d, with no Chroma in the way.
"""

from __future__ import annotations

import time
from typing import Mapping, Sequence

import numpy as np

from ..errors import RCAError
from .embeddings import Embedder, EmbeddingUnavailable


class Similarity:
    def __init__(self, query: np.ndarray, *, embedder: Embedder | None = None, texts: Mapping[str, str] | None = None,
                 ids: Sequence[str] | None = None, vectors: np.ndarray | None = None):
        """``embedder`` + ``texts`` (template id -> text to embed), or stored ``ids`` + ``vectors`` (one row each)."""
        if (texts is None) == (vectors is None):
            raise ValueError("give either texts (with an embedder) or stored ids and vectors")
        self.query = np.asarray(query, dtype=np.float32)
        self.embedder = embedder
        self.texts = texts
        self.vectors = vectors
        self.rows = {t: i for i, t in enumerate(ids or ())}
        self.asked: list[str] = []  # template ids looked up, in order
        self.seconds = 0.0

    def __call__(self, template_ids: Sequence[str]) -> dict[str, float]:
        t0 = time.perf_counter()
        try:
            if self.vectors is not None:
                known = [t for t in template_ids if t in self.rows]
                vecs = self.vectors[[self.rows[t] for t in known]] if known else None
            else:
                known = [t for t in template_ids if t in self.texts]
                vecs = self.embedder.embed([self.texts[t] for t in known]) if known else None
            self.asked.extend(template_ids)
            if vecs is None:
                return {}
            return dict(zip(known, (vecs @ self.query).astype(float).tolist()))
        except RCAError:
            raise
        except Exception as exc:  # noqa: BLE001 - the analysis goes on in fast mode, saying why
            raise EmbeddingUnavailable(f"embedding failed ({type(exc).__name__}: {exc})") from None
        finally:
            self.seconds += time.perf_counter() - t0
