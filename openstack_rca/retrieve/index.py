"""The semantic index: one Chroma collection per corpus, one document per distinct template.

Indexing templates, not lines, is what makes it cheap: a 100k-line corpus has a few hundred templates, so
embedding takes seconds on a laptop CPU instead of the minutes 100k sentences would. Each document carries the
metadata an operator filters by (service, level, template id, first/last time, where it first occurs).

Embedded Chroma (``PersistentClient`` under RCA_HOME) is the default; with ``CHROMA_HOST`` set the same code talks
to a Chroma server, sending ``CHROMA_TOKEN`` as a bearer token when there is one.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..config import RCAConfig
from ..errors import InvalidInput, RCAError
from .embeddings import Embedder, EmbeddingUnavailable

ProgressFn = Callable[[int], None]


class RetrievalUnavailable(RCAError):
    """Chroma cannot be reached or refused the request (analysis falls back to fast mode)."""


def collection_name(corpus: str) -> str:
    """The corpus's Chroma collection, one per exact name: a readable prefix plus a hash of the name, because
    Chroma (3-63 characters, alphanumeric at both ends, no '..') cannot tell ``a``, ``a.`` and ``a-`` apart by
    the name alone. Corpora indexed under the older naming (``rca-<name>``) must be ingested again."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}", corpus or ""):
        raise InvalidInput(f"corpus name {corpus!r}: use letters, digits, '.', '_' or '-' (at most 101 characters)")
    prefix = corpus.replace(".", "_")[:40].rstrip("_-")
    return f"rca-{prefix}-{hashlib.sha256(corpus.encode()).hexdigest()[:8]}"


def connect(cfg: RCAConfig, env=None):
    """A Chroma client for this config: server mode when a host is configured, else embedded."""
    import os

    env = os.environ if env is None else env
    try:
        import chromadb
        from chromadb.config import Settings
    except ImportError:
        raise RetrievalUnavailable("chromadb is not installed (pip install 'openstack-rca[rag]'); use --fast-mode") \
            from None
    settings = Settings(anonymized_telemetry=False)
    host = cfg.retrieval.host(env)
    try:
        if host:
            token = env.get("CHROMA_TOKEN", "")
            headers = {"Authorization": f"Bearer {token}"} if token else None
            return chromadb.HttpClient(host=host, port=cfg.retrieval.port(env), ssl=cfg.retrieval.chroma_ssl,
                                       headers=headers, settings=settings)
        cfg.chroma_dir.mkdir(parents=True, exist_ok=True)
        return chromadb.PersistentClient(path=str(cfg.chroma_dir), settings=settings)
    except Exception as exc:  # noqa: BLE001 - connection refused, auth, bad URL: one meaning to the caller
        where = f"{host}:{cfg.retrieval.port(env)}" if host else str(cfg.chroma_dir)
        raise RetrievalUnavailable(f"Chroma at {where} is unavailable ({type(exc).__name__}: {_first_line(exc)})") \
            from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:200]


EMBED_CHARS = 160


def plain(template: str) -> str:
    """The template as a sentence: placeholders carry no meaning for an embedding, and what a line is about is
    in its first words (the tail of a long one is a dict or a traceback frame), so it is cut at 160 characters,
    which also keeps embedding cost per template bounded."""
    return (" ".join(template.replace("<*>", " ").split()) or template)[:EMBED_CHARS]


def template_texts(table: pa.Table) -> dict[str, str]:
    """Template id -> the text embedded for it (``plain``), one per distinct template: what ``documents`` embeds,
    without the metadata an index needs."""
    if table.num_rows == 0:
        return {}
    enc = pc.dictionary_encode(table["template_id"].combine_chunks())
    _, first = np.unique(enc.indices.to_numpy(zero_copy_only=False), return_index=True)
    ids = pc.take(table["template_id"], pa.array(first)).to_pylist()
    templates = pc.take(table["template"], pa.array(first)).to_pylist()
    return {i: plain(t or "") for i, t in zip(ids, templates)}


def documents(table: pa.Table) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """One document per distinct template: ids, texts, metadata."""
    from ..parse.timestamps import iso, template_occurrences, to_epoch

    if table.num_rows == 0:
        return [], [], []
    occ = template_occurrences(table["template_id"], to_epoch(table["timestamp"]))
    ids, first, count = occ["ids"], occ["first_row"], occ["count"]
    first_ts, last_ts = occ["first_ts"], occ["last_ts"]
    k = len(ids)
    cols = {c: pc.take(table[c], pa.array(first)).to_pylist()
            for c in ("template", "service", "level", "source", "line_no")}
    texts, metas = [], []
    for i in range(k):
        texts.append(plain(cols["template"][i]))
        meta = {"template_id": ids[i], "template": cols["template"][i][:2000], "service": cols["service"][i] or "",
                "level": cols["level"][i] or "", "count": int(count[i]), "source": cols["source"][i] or "",
                "line_no": int(cols["line_no"][i] or 0)}
        if np.isfinite(first_ts[i]):
            meta["first_seen"] = iso(first_ts[i])
        if np.isfinite(last_ts[i]):
            meta["last_seen"] = iso(last_ts[i])
        metas.append(meta)
    return ids, texts, metas


class SemanticIndex:
    def __init__(self, client, embedder: Embedder, *, query_k: int = 50):
        self.client = client
        self.embedder = embedder
        self.query_k = query_k
        # template id -> unit vector, per corpus: stored embeddings never change for an id, so they are fetched
        # from Chroma once per process instead of on every analysis
        self._vectors: dict[str, dict[str, np.ndarray]] = {}

    def _collection(self, corpus: str, create: bool = False):
        name = collection_name(corpus)
        try:
            if create:
                return self.client.get_or_create_collection(
                    name, configuration={"hnsw": {"space": "cosine"}}, embedding_function=None,
                    metadata={"embedding_model": self.embedder.name})
            return self.client.get_collection(name, embedding_function=None)
        except Exception as exc:  # noqa: BLE001
            if not create and "does not exist" in str(exc).lower():
                raise RetrievalUnavailable(f"corpus {corpus!r} has no semantic index (or was indexed under the "
                                           "older collection naming): run rca ingest for it again") from None
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None

    def index(self, corpus: str, table: pa.Table, progress: ProgressFn | None = None, *,
              prune: bool = False) -> dict[str, Any]:
        """Add the table's templates to the corpus collection; only templates not indexed yet are embedded.
        With ``prune`` (a re-ingest: the table is the whole corpus) templates the table no longer has are removed.

        Returns the counts and, under "ids" and "vectors", every template's vector as Chroma holds it: the corpus
        keeps them, so analysing it needs no Chroma (nor its import)."""
        ids, texts, metas = documents(table)
        col = self._collection(corpus, create=True)
        try:
            have = set(col.get(ids=ids, include=[])["ids"]) if ids else set()
            batch = max(1, min(int(self.client.get_max_batch_size()), 1000))
        except Exception as exc:  # noqa: BLE001
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None
        new = [i for i, tid in enumerate(ids) if tid not in have]
        # metadata (counts, last seen) is refreshed for all; embeddings computed only for the new ones
        old = [i for i, tid in enumerate(ids) if tid in have]
        vectors: dict[str, np.ndarray] = {}
        try:
            for s in range(0, len(old), batch):
                part = old[s:s + batch]
                col.update(ids=[ids[i] for i in part], metadatas=[metas[i] for i in part])
                got = col.get(ids=[ids[i] for i in part], include=["embeddings"])
                vectors.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
            for s in range(0, len(new), batch):
                part = new[s:s + batch]
                vecs = self.embedder.embed([texts[i] for i in part])
                col.upsert(ids=[ids[i] for i in part], embeddings=vecs, documents=[texts[i] for i in part],
                           metadatas=[metas[i] for i in part])
                vectors.update(zip((ids[i] for i in part), vecs))
                if progress:
                    progress(len(part))
        except (RetrievalUnavailable, EmbeddingUnavailable):
            raise
        except Exception as exc:  # noqa: BLE001
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None
        if prune:
            self._prune(col, set(ids))
        have_ids = [t for t in ids if t in vectors]
        matrix = np.stack([vectors[t] for t in have_ids]) if have_ids else np.zeros((0, 0), np.float32)
        return {"templates": len(ids), "embedded": len(new), "ids": have_ids, "vectors": matrix}

    def _prune(self, col, keep: set[str]) -> None:
        try:
            stale = [i for i in col.get(include=[])["ids"] if i not in keep]
            for s in range(0, len(stale), 1000):
                col.delete(ids=stale[s:s + 1000])
        except Exception as exc:  # noqa: BLE001
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None

    def orphans(self, corpora: list[str]) -> list[str]:
        """This project's collections ("rca-…") that belong to none of ``corpora``: left by deleted corpora or
        by the older naming (``rca-<name>``). Only meaningful when ``corpora`` is every corpus of the store."""
        keep = {collection_name(c) for c in corpora}
        try:
            names = [getattr(c, "name", c) for c in self.client.list_collections()]
        except Exception as exc:  # noqa: BLE001
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None
        return sorted(n for n in names if n.startswith("rca-") and n not in keep)

    def drop_collections(self, names: list[str]) -> None:
        for n in names:
            try:
                self.client.delete_collection(n)
            except Exception as exc:  # noqa: BLE001
                raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None

    def similarities(self, corpus: str, issue: str, template_ids: list[str]) -> dict[str, float]:
        """Cosine similarity of the issue to each given template (and to its nearest neighbours in the corpus).

        The nearest neighbours come from Chroma's HNSW query; templates the query did not return are compared
        exactly from their stored embeddings, so every candidate gets a score.
        """
        q = self.embedder.embed_query(issue)
        col = self._collection(corpus)
        try:
            n = col.count()
            if n == 0:
                return {}
            res = col.query(query_embeddings=[q], n_results=min(self.query_k, n), include=["distances"])
            sims = {tid: 1.0 - float(d) for tid, d in zip(res["ids"][0], res["distances"][0])}
            known = self._vectors.setdefault(corpus, {})
            missing = [t for t in dict.fromkeys(template_ids) if t not in sims]
            fetch = [t for t in missing if t not in known]
            if fetch:
                got = col.get(ids=fetch, include=["embeddings"])
                known.update(zip(got["ids"], np.asarray(got["embeddings"], dtype=np.float32)))
            have = [t for t in missing if t in known]
            if have:
                vecs = np.stack([known[t] for t in have])
                sims.update(zip(have, (vecs @ q).astype(float).tolist()))
        except RetrievalUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None
        return sims

    def search(self, corpus: str, text: str, k: int = 10) -> list[dict[str, Any]]:
        """The k templates closest in meaning to ``text``, with their metadata."""
        q = self.embedder.embed_query(text)
        col = self._collection(corpus)
        try:
            n = col.count()
            if n == 0:
                return []
            res = col.query(query_embeddings=[q], n_results=min(k, n), include=["distances", "metadatas",
                                                                                 "documents"])
        except Exception as exc:  # noqa: BLE001
            raise RetrievalUnavailable(f"Chroma: {type(exc).__name__}: {_first_line(exc)}") from None
        return [{"template_id": i, "similarity": round(1.0 - float(d), 4), "text": doc, **(meta or {})}
                for i, d, doc, meta in zip(res["ids"][0], res["distances"][0], res["documents"][0],
                                           res["metadatas"][0])]

    def drop(self, corpus: str) -> None:
        try:
            self.client.delete_collection(collection_name(corpus))
        except Exception:  # noqa: BLE001 - nothing to drop
            pass
