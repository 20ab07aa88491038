"""analyze: parse -> score -> retrieve -> diagnose -> narrate, as one call the shells share.

The CLI, the BentoML service and the dashboard hold one ``Analyzer`` and call ``analyze``; none of them
re-implements a step. The model and the embedding model load once per process; Chroma is connected on first
use, and only for ingest, search and corpora ingested before their vectors were kept: logs given with the question
are compared with it directly (``retrieve.Similarity``), embedding only the templates the diagnosis asks about.
Hybrid mode degrades to fast mode, with a warning in the report, when Chroma or the embedding model is
unavailable; the narrative degrades to the offline one. Only bad input fails a call.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Iterable, Sequence

import pyarrow as pa
import pyarrow.compute as pc

from . import corpus as corpus_store
from . import registry
from .config import RCAConfig
from .diagnose import diagnose, parse_issue
from .errors import InvalidInput, RCAError
from .narrate.claude import ClaudeNarrator, TextFn
from .parse.reader import RawFile
from .telemetry import stage
from .retrieve import (Embedder, EmbeddingUnavailable, RetrievalUnavailable, SemanticIndex, Similarity, connect,
                       template_texts)

log = logging.getLogger(__name__)
MODES = ("hybrid", "fast")
MAX_ISSUE_CHARS = 2000


def require_records(table: pa.Table, totals: dict[str, Any], where: Sequence[Any]) -> None:
    """Logs with no record in a known layout cannot be diagnosed: raise InvalidInput saying what was found, so a
    shell answers at once (exit 2, HTTP 422) instead of reporting "no evidence" on nothing."""
    if table.num_rows and pc.any(table["parsed"]).as_py():
        return
    place = ", ".join(str(p) for p in where) or "the input"
    files, lines = int(totals.get("files", 0) or 0), int(totals.get("lines", 0) or 0)
    if not lines:
        found = f"{files} file(s), no lines" if files else "0 files"
    else:
        found = (f"{files} file(s), " if files else "") + f"{lines} line(s), none in a known log layout"
    raise InvalidInput(f"no log records in {place}: {found}; point it at OpenStack service logs (e.g. /var/log/nova)")


def _count(span: Any, records: int) -> None:
    if span is not None:
        span.set_attribute("rca.records", records)


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1000, 1)


class Analyzer:
    def __init__(self, cfg: RCAConfig, *, loaded: registry.LoadedModel | None = None,
                 narrator: ClaudeNarrator | None = None, embedder: Embedder | None = None,
                 scorer: Callable[[pa.Table], pa.Table] | None = None):
        """``narrator`` and ``scorer`` may be remote (the BentoML service passes its runner and narrator
        services); by default the model scores in-process and Claude is called from here."""
        self.cfg = cfg
        self._scorer = scorer
        self._loaded = loaded
        self._narrator = narrator or ClaudeNarrator(cfg.narrative)
        self._embedder = embedder
        self._index: SemanticIndex | None = None
        self._lock = threading.RLock()
        self._corpora: dict[str, corpus_store.Corpus] = {}  # name -> the last version read (Corpus.version)

    # -- collaborators, loaded on first use -------------------------------------------------------------------
    @property
    def model(self) -> registry.LoadedModel:
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    self._loaded = registry.load(self.cfg)
        return self._loaded

    def reload_model(self) -> registry.LoadedModel:
        with self._lock:
            self._loaded = registry.load(self.cfg)
        return self._loaded

    def embedder(self) -> Embedder:
        """The embedding model; it loads on the first text that is not in the machine's embedding cache."""
        with self._lock:
            if self._embedder is None:
                r = self.cfg.retrieval
                self._embedder = Embedder(r.embedding_model, batch_size=r.embed_batch, backend=r.embedding_backend,
                                          cache_dir=r.cache_path() / "embeddings",
                                          cache_max_vectors=r.cache_max_vectors)
            return self._embedder

    def semantic_index(self) -> SemanticIndex:
        with self._lock:
            if self._index is None:
                self._index = SemanticIndex(connect(self.cfg), self.embedder(), query_k=self.cfg.retrieval.query_k)
            return self._index

    def _forget_index(self) -> None:
        with self._lock:
            self._index = None  # reconnect next time: the server may be back

    # -- score (the service's /score and the gRPC ModelInfer) ------------------------------------------------
    def score_documents(self, documents: Sequence[str]) -> list[dict[str, Any]]:
        """Per-record template id and scores for each document (one request's log text), scored together.

        A record may span several lines (a traceback joins its record); ``lines`` accounts for every input line.
        """
        from .parse.text import parse_text

        parsed = [parse_text(doc, f"request-{i}", max_line_bytes=self.cfg.parse.max_line_bytes)
                  for i, doc in enumerate(documents)]
        m = self.model
        scored = m.bundle.score_many([p.table for p in parsed])
        out = []
        for p, sc in zip(parsed, scored):
            t = p.table
            cols = {c: t[c].to_pylist() for c in ("line_no", "line_end", "template_id", "template", "level",
                                                   "service", "parsed")}
            an, imp = sc["anomaly"].to_numpy(), sc["importance"].to_numpy()
            flag = sc["anomalous"].to_numpy(zero_copy_only=False)
            records = [{
                "line_no": cols["line_no"][i], "line_end": cols["line_end"][i],
                "template_id": cols["template_id"][i], "template": cols["template"][i], "level": cols["level"][i],
                "service": cols["service"][i], "parsed": cols["parsed"][i], "anomaly": round(float(an[i]), 5),
                "anomalous": bool(flag[i]), "importance": round(float(imp[i]), 5),
            } for i in range(t.num_rows)]
            out.append({"records": records, "lines": {
                "total": p.lines, "blank": p.blank, "continuation": p.continuation, "unparsed": p.unparsed,
                "truncated": p.truncated}})
        return out

    # -- ingest ----------------------------------------------------------------------------------------------
    def ingest(self, paths: Sequence[str] | None, name: str, *, progress: Callable[[int], None] | None = None,
               index: bool = True, text: str | None = None,
               members: Sequence[RawFile] | None = None) -> dict[str, Any]:
        """Parse, score and index ``paths`` (or one request's log ``text``, or in-memory ``members``: pod logs
        from ``sources.k8s``) as corpus ``name``."""
        corpus_store.corpus_dir(self.cfg, name)  # validate the name before any work
        # what killed writers left behind (corpora being written are skipped): swept by writers, so readers (every
        # `rca analyze`) never pay for it; the service also sweeps at start
        corpus_store.cleanup(self.cfg)
        t0 = time.perf_counter()
        timings: dict[str, float] = {}
        with stage("parse", timings, corpus=name) as sp:
            if text is not None:
                from .parse.text import parse_text
                from .parse.text import totals as text_totals

                res = parse_text(text, f"{name}.log", max_line_bytes=self.cfg.parse.max_line_bytes)
                table, totals = res.table, text_totals(res)
                paths = []
            else:
                from .parse import Parser

                result = Parser(self.cfg).parse(paths or [], progress, members=members or ())
                table, totals = result.table, result.summary()["totals"]
                paths = [*(paths or []), *(m.path for m in members or ())]  # what the corpus was made of, by name
            _count(sp, table.num_rows)
        require_records(table, totals if text is None else {**totals, "files": 0},
                        paths if text is None else ["the log text"])
        m = self.model
        with stage("score", timings, records=table.num_rows, model_version=str(m.version)):
            scores = self._score(table)
        meta: dict[str, Any] = {
            "files": [str(p) for p in paths], "input": totals,
            "model": {"name": m.name, "version": m.version}, "indexed": False,
        }
        warnings: list[str] = []
        indexed: dict[str, Any] = {}
        # The Chroma step runs under the corpus's writer lock, with the publish: two ingests of one name cannot
        # mix their templates in its collection, and the collection ends up holding the published version's.
        with corpus_store.store(self.cfg).writer(name) as w:
            vectors = None
            with stage("index", timings, corpus=name):
                if index:
                    try:
                        idx = self.semantic_index()
                        indexed = idx.index(name, table, prune=True)
                        meta.update(indexed=True, embedding_model=idx.embedder.name,
                                    templates=indexed["templates"])
                        vectors = corpus_store.Vectors(idx.embedder.key, indexed["ids"], indexed["vectors"])
                    except (RetrievalUnavailable, EmbeddingUnavailable) as exc:
                        self._forget_index()
                        warnings.append(f"semantic index not built ({exc}); the corpus works in fast mode until "
                                        f"`rca ingest` runs again with Chroma reachable")
            with stage("publish", timings, corpus=name):
                w.publish(table, scores, meta, vectors)
        return {"corpus": name, **meta, "embedded": indexed.get("embedded", 0), "warnings": warnings,
                "timings_ms": {**timings, "total": _ms(t0)}}

    def _semantic(self, issue: str, tab: pa.Table, c: corpus_store.Corpus | None):
        """What diagnose needs of the issue's meaning: a ``Similarity`` over the corpus's stored vectors or the
        logs' own templates (embedded as diagnose asks for them), or, for a corpus ingested before vectors were
        kept with it, every template's similarity from its Chroma collection."""
        if c is not None and (c.vectors is None or c.vectors.model != self.embedder().key):
            ids = sorted(set(tab["template_id"].to_pylist()))
            return self.semantic_index().similarities(c.name, issue, ids)
        emb = self.embedder()
        query = emb.embed_query(issue)
        if c is not None:
            return Similarity(query, ids=c.vectors.ids, vectors=c.vectors.matrix)
        return Similarity(query, embedder=emb, texts=template_texts(tab))

    def _load_corpus(self, name: str) -> corpus_store.Corpus:
        """The corpus's current version, pinned for the caller's whole request. Versions stay in memory between
        analyses (a service answers many questions about one incident); a re-ingest publishes a new version
        id and is picked up."""
        version = corpus_store.stamp(self.cfg, name)
        with self._lock:
            hit = self._corpora.get(name)
            if hit is not None and hit.version == version:
                return hit
        c = corpus_store.load(self.cfg, name)
        self._remember(c)
        return c

    def _remember(self, c: corpus_store.Corpus) -> None:
        with self._lock:
            self._corpora.pop(c.name, None)
            if len(self._corpora) >= 4:
                self._corpora.pop(next(iter(self._corpora)))
            self._corpora[c.name] = c

    def _keep_scores(self, c: corpus_store.Corpus, scores: pa.Table, m: registry.LoadedModel) -> None:
        """Publish the re-scored corpus as a new version, unless another request is writing it (this request
        still uses its scores) or a re-ingest replaced it meanwhile."""
        try:
            new = corpus_store.rescore(self.cfg, c, scores, model={"name": m.name, "version": m.version})
        except RCAError as exc:  # StoreBusy, StorageFull: the answer does not depend on keeping them
            log.warning("re-scored corpus %r not kept: %s", c.name, exc)
            return
        if new is not None:
            self._remember(new)

    def _score(self, table: pa.Table) -> pa.Table:
        return self._scorer(table) if self._scorer is not None else self.model.bundle.score(table)

    # -- analyze ---------------------------------------------------------------------------------------------
    def analyze(self, issue: str, *, paths: Iterable[str] | None = None, corpus: str | None = None,
                table: pa.Table | None = None, text: str | None = None, mode: str | None = None,
                top_k: int | None = None, members: Sequence[RawFile] | None = None,
                narrate: bool = True, on_text: TextFn | None = None) -> dict[str, Any]:
        issue = " ".join(str(issue or "").split())
        if not issue:
            raise InvalidInput("the issue text is empty: describe what the operator sees, e.g. "
                               "'instances fail to boot since 14:00'")
        if len(issue) > MAX_ISSUE_CHARS:
            raise InvalidInput(f"the issue text is {len(issue)} characters; keep it under {MAX_ISSUE_CHARS}")
        mode = mode or self.cfg.analyze.mode
        if mode not in MODES:
            raise InvalidInput(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        top_k = self.cfg.analyze.top_k if top_k is None else top_k
        if not 1 <= int(top_k) <= 100:
            raise InvalidInput(f"top_k must be 1..100 (got {top_k})")
        given = sum(x is not None for x in (paths, corpus, table, text, members))
        if given != 1:
            raise InvalidInput("give exactly one of: log paths, log text, pod logs, an ingested corpus name, or a "
                               "parsed table")
        if members is not None:  # in-memory logs (sources.k8s) go the paths' way, named by their labels
            paths = [m.path for m in members]

        timings: dict[str, float] = {}
        warnings: list[str] = []
        t0 = time.perf_counter()
        scores = None
        source: dict[str, Any]
        if corpus is not None:  # an unknown corpus is bad input: say so before loading any model
            with stage("corpus", timings, corpus=corpus):
                c = self._load_corpus(corpus)
        elif paths is not None:  # logs with no records are bad input too: say so before loading any model
            from .parse import Parser

            with stage("parse", timings) as sp:
                result = Parser(self.cfg).parse([] if members is not None else list(paths), members=members or ())
                _count(sp, result.table.num_rows)
            require_records(result.table, result.summary()["totals"], paths)
        elif text is not None:
            from .parse.text import parse_text, totals

            with stage("parse", timings) as sp:
                res = parse_text(text, "request", max_line_bytes=self.cfg.parse.max_line_bytes)
                _count(sp, res.table.num_rows)
            require_records(res.table, {**totals(res), "files": 0}, ["the log text"])
        first_load = self._loaded is None
        m = self.model
        timings["load"] = round(m.load_ms, 1) if first_load else 0.0  # once per process: a server pays it at start
        if corpus is not None:
            tab, scores = c.table, c.scores
            if c.meta.get("model", {}).get("version") != m.version:
                scores = None  # scored by another model version: score again and keep the result
            source = {"corpus": corpus, "records": tab.num_rows, "input": c.meta.get("input")}
            if mode == "hybrid" and not c.meta.get("indexed"):
                warnings.append(f"corpus {corpus!r} has no semantic index (Chroma was unreachable at ingest); "
                                "fast mode used")
                mode_used = "fast"
            else:
                mode_used = mode
        elif paths is not None:
            tab = result.table
            source = {"paths": [str(p) for p in paths], "records": tab.num_rows, "input": result.summary()["totals"]}
            mode_used = mode
        elif text is not None:
            tab = res.table
            source = {"records": tab.num_rows, "input": totals(res)}
            mode_used = mode
        else:
            tab = table
            source = {"records": tab.num_rows}
            mode_used = mode
        if scores is None or scores.num_rows != tab.num_rows:
            with stage("score", timings, records=tab.num_rows, model_version=str(m.version)):
                scores = self._score(tab)
            if corpus is not None:
                self._keep_scores(c, scores, m)

        parsed = parse_issue(issue)
        semantic = None
        if mode_used == "hybrid":
            with stage("retrieve", timings):
                try:
                    semantic = self._semantic(issue, tab, c if corpus is not None else None)
                except (RetrievalUnavailable, EmbeddingUnavailable) as exc:
                    self._forget_index()
                    warnings.append(f"semantic search unavailable ({exc}); fast mode used")
                    mode_used = "fast"
                    semantic = None

        with stage("diagnose", timings, records=tab.num_rows, mode=mode_used):
            try:
                dg = diagnose(tab, scores, m.bundle, parsed, semantic=semantic, top_k=int(top_k))
            except (RetrievalUnavailable, EmbeddingUnavailable) as exc:  # a lookup the diagnosis asked for failed
                warnings.append(f"semantic search unavailable ({exc}); fast mode used")
                mode_used = "fast"
                dg = diagnose(tab, scores, m.bundle, parsed, semantic=None, top_k=int(top_k))
        if isinstance(semantic, Similarity):  # the lookups ran inside diagnose: count them as retrieval
            spent = round(semantic.seconds * 1000, 1)
            timings["retrieve"] = round(timings["retrieve"] + spent, 1)
            timings["diagnose"] = round(max(timings["diagnose"] - spent, 0.0), 1)
        evidence = [{k: v for k, v in ev.items() if k != "row"} for ev in dg.evidence]
        warnings.extend(dg.warnings)
        report: dict[str, Any] = {
            "issue": issue, "mode": mode_used, "requested_mode": mode,
            "root_cause": dg.root_cause, "onset": dg.onset, "evidence": evidence, "timeline": dg.timeline,
            "affected": dg.affected, "narrative": None, "series": dg.series,
            "model": {"name": m.name, "version": m.version, "alias": m.alias, "source": m.source},
            "source": source, "stats": dg.stats, "warnings": warnings, "timings_ms": timings,
        }
        if narrate:
            with stage("narrate", timings):
                report["narrative"] = self._narrator.narrate(report, on_text)
            if report["narrative"].get("warning"):
                warnings.append(f"narrative: {report['narrative']['warning']}")
        timings["total"] = _ms(t0)
        return report
