"""``rca``: the command-line shell. It parses arguments, calls the library, and renders; no logic of its own.

Every command takes ``--json`` but ``serve`` and ``dashboard``, which become the server they start. Errors end in
one line on stderr that says what to do, with exit code 2 for bad input (missing path, bad argument or config) and 1
for anything else.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from . import __version__
from .config import RCAConfig, load
from .errors import InputNotFound, InvalidInput, RCAError


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")


# -- commands ------------------------------------------------------------------------------------------------
def cmd_parse(args: argparse.Namespace, cfg: RCAConfig) -> int:
    from .parse.nopandas import keep_pandas_out

    keep_pandas_out()  # this process only parses and prints: pandas would be a fifth of a cached run
    from . import console
    from .parse import Parser, reader
    from .parse.stats import overview

    if args.workers is not None:
        from dataclasses import replace

        cfg = cfg.replace(parse=replace(cfg.parse, workers=args.workers))
    files = reader.discover(args.paths)  # fail fast on a missing path, before any work
    total = sum(f.stat().st_size for f in files)
    parser = Parser(cfg, use_cache=False if args.no_cache else None)
    with console.byte_progress("parsing", total) as progress:
        result = parser.parse(args.paths, progress)
    summary = result.summary()
    if args.json and not args.summary:
        from .parse.jsonl import write_jsonl

        sys.stdout.flush()
        write_jsonl(result.table, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        t = summary["totals"]
        console.err.print(
            f"{t['lines']:,} lines -> {t['records']:,} records ({t['continuation']:,} continuation, "
            f"{t['blank']:,} blank, {t['unparsed']:,} unparsed) in {t['files']} files"
        )
        return 0
    ov = overview(result.table, limit=args.top)
    if args.json:
        _print_json({**summary, "overview": ov})
    else:
        console.parse_summary(summary, ov)
    return 0


def cmd_simulate(args: argparse.Namespace, cfg: RCAConfig) -> int:
    from . import simulate

    if args.list:
        faults = [
            {"fault": name, "category": f.category, "component": f.component, "description": f.description}
            for name, f in simulate.FAULTS.items()
        ]
        if args.json:
            _print_json(faults)
        else:
            for f in faults:
                print(f"{f['fault']:<28} {str(f['category']):<20} {f['description']}")
        return 0
    if not args.fault or not args.out:
        raise InvalidInput("rca simulate needs --fault NAME and --out DIR (see rca simulate --list)")
    truth = simulate.simulate(args.fault, args.out, lines=args.lines, seed=args.seed, layout=args.layout)
    if args.json:
        _print_json(truth)
    else:
        from . import console

        console.key_values(
            f"simulated {truth['fault']} -> {args.out}",
            {
                "lines": truth["lines"], "files": len(truth["files"]), "layout": truth["layout"],
                "category": truth.get("category"), "component": truth.get("component"),
                "started_at": truth.get("started_at"), "root-cause lines": len(truth["root_cause"]),
                "ground truth": str(Path(args.out) / "ground_truth.json"),
            },
        )
    return 0


def cmd_cache(args: argparse.Namespace, cfg: RCAConfig) -> int:
    from .parse.cache import ParsedCache
    from .parse.templates import TemplateStore
    from .retrieve.cache import EmbeddingCache

    parsed = ParsedCache(cfg.parsed_cache_dir)
    tpath = cfg.templates_path
    # the per-machine embedding cache (shared by every RCA_HOME), opened without loading the embedding model
    vectors = EmbeddingCache(cfg.retrieval.cache_path() / "embeddings" / "vectors.sqlite3",
                             max_vectors=cfg.retrieval.cache_max_vectors)
    if args.cache_cmd == "info":
        info = {
            "home": str(cfg.home),
            "parsed": parsed.info(),
            "templates": {"path": str(tpath), "templates": len(TemplateStore(tpath)),
                          "bytes": tpath.stat().st_size if tpath.is_file() else 0},
            "embeddings": vectors.info(),
        }
        if args.json:
            _print_json(info)
        else:
            from . import console

            console.key_values("openstack-rca cache", {
                "home": info["home"],
                "parsed records": f"{info['parsed']['entries']} files, {info['parsed']['bytes']:,} bytes "
                                  f"({info['parsed']['path']})",
                "templates": f"{info['templates']['templates']} templates ({info['templates']['path']})",
                "embeddings": f"{info['embeddings']['vectors']:,} of at most {info['embeddings']['max_vectors']:,} "
                              f"vectors, {info['embeddings']['bytes']:,} bytes ({info['embeddings']['path']})",
            })
        return 0
    cleared: dict[str, int] = {}
    if args.target in ("all", "parsed"):
        cleared["parsed"] = parsed.clear()
    if args.target in ("all", "templates"):
        n = len(TemplateStore(tpath))
        for p in (tpath, tpath.with_suffix(".lock")):
            p.unlink(missing_ok=True)
        cleared["templates"] = n
    if args.target == "embeddings":  # per machine, shared by every RCA_HOME: only when named, never with "all"
        cleared["embeddings"] = vectors.clear()
    if args.json:
        _print_json({"cleared": cleared})
    else:
        print("cleared: " + ", ".join(f"{k} ({v})" for k, v in cleared.items()))
    return 0


def cmd_templates(args: argparse.Namespace, cfg: RCAConfig) -> int:
    from .parse.templates import TemplateStore

    store = TemplateStore(cfg.templates_path)
    rows = sorted(
        ({"template_id": k, **vars(v)} for k, v in store.items()), key=lambda r: (-r["count"], r["template_id"])
    )[: args.limit]
    if args.json:
        _print_json(rows)
    else:
        from . import console

        console.templates(rows)
    return 0


def _quiet_ml() -> None:
    """MLflow and TensorFlow narrate their internals on stderr; the CLI reports what matters itself. Neither is
    imported here: most commands never need them, and the registry lowers MLflow's loggers when it imports it."""
    import warnings

    from . import registry

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    warnings.simplefilter("ignore", UserWarning)  # mlflow's advice on type hints, keras' on numpy copies
    registry.quiet_mlflow()


def _with_model_flags(cfg: RCAConfig, args: argparse.Namespace) -> RCAConfig:
    from dataclasses import replace

    changes = {k: getattr(args, k) for k in ("alias",) if getattr(args, k, None)}
    return cfg.replace(model=replace(cfg.model, **changes)) if changes else cfg


def cmd_train(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_ml()
    from model_training.pipeline import train

    from . import console
    from .score.deeplog import DeepLogConfig

    hp = DeepLogConfig(
        window=args.window or cfg.model.window, top_g=args.top_g or cfg.model.top_g,
        epochs=args.epochs or cfg.model.epochs, seed=args.seed,
    )
    with console.epoch_progress(hp.epochs) as on_epoch:
        result = train(args.logs, _with_model_flags(cfg, args), hp, on_epoch=on_epoch, promote=args.promote)
    if args.json:
        _print_json(result)
    else:
        console.key_values(f"trained {result['model_uri']} (version {result['version']})", {
            "run": result["run_id"], **{k: round(v, 4) for k, v in result["metrics"].items()},
            result["promotion"]: result["promotion_reason"],
            result["alias_uri"]: f"version {result['champion_version']}",
        })
    return 0


def cmd_models(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_ml()
    from . import registry

    cfg = _with_model_flags(cfg, args)
    if args.models_cmd == "list":
        rows = registry.list_versions(cfg)
        if args.json:
            _print_json(rows)
        else:
            from . import console

            console.model_versions(cfg.model.name, rows)
        return 0
    result = registry.promote(cfg, args.version)
    if args.json:
        _print_json(result)
    else:
        print(f"{result['model_name']}@{result['alias']} -> version {result['version']}")
    return 0


def cmd_score(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_ml()
    from . import registry
    from .parse import Parser
    from .score.report import top_anomalies

    cfg = _with_model_flags(cfg, args)
    loaded = registry.load(cfg)
    table = Parser(cfg).parse(args.paths).table
    sessions = top_anomalies(table, loaded.bundle.score(table), per_session=args.top, sessions=args.sessions)
    result = {"model": {"name": loaded.name, "version": loaded.version, "alias": loaded.alias,
                        "source": loaded.source}, "records": table.num_rows, "sessions": sessions}
    if args.json:
        _print_json(result)
    else:
        from . import console

        console.anomalies(result)
    return 0


def cmd_evaluate(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_ml()
    from model_training.evaluate import evaluate

    from . import registry

    cfg = _with_model_flags(cfg, args)
    for p in args.logs:
        if not Path(p).exists():
            raise InputNotFound(f"path not found: {p}")
    loaded = registry.load(cfg)
    rows = evaluate(args.logs, cfg, loaded)
    result = {"model": {"name": loaded.name, "version": loaded.version}, "results": rows}
    if args.json:
        _print_json(result)
    else:
        from . import console

        console.evaluation(result)
    return 0


def _quiet_rag() -> None:
    """sentence-transformers, transformers and chroma are chatty on stderr; the report says what matters."""
    import logging

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # by environment, not by importing transformers (0.4 s): it is imported only for the one-time ONNX export
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in ("sentence_transformers", "transformers", "chromadb", "httpx", "anthropic"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cmd_ingest(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_ml()
    _quiet_rag()
    from . import console
    from .analyze import Analyzer
    from .parse import reader

    cfg = _with_model_flags(cfg, args)
    if bool(args.paths) == (args.k8s is not None):
        raise InvalidInput("rca ingest needs PATH... or --k8s NAMESPACE (one of them)")
    pods = _pod_logs(args, cfg)
    if pods is None:
        files = reader.discover(args.paths)
        total = sum(f.stat().st_size for f in files)
    else:
        total = pods.summary["bytes"]
    with console.byte_progress("ingesting", total) as progress:
        res = Analyzer(cfg).ingest(args.paths or None, args.corpus, progress=progress, index=not args.no_index,
                                   members=pods.files if pods is not None else None)
    if pods is not None:
        res["k8s"] = pods.summary
        res["warnings"] = [*res.get("warnings", []), *pods.warnings()]
    if args.json:
        _print_json(res)
    else:
        console.ingest_summary(res)
    return 0


def _pod_logs(args: argparse.Namespace, cfg: RCAConfig):
    """The pod logs ``--k8s NAMESPACE`` and its options name (``sources.k8s.PodLogs``), or None without it."""
    given = [f"--{name.replace('_', '-')}" for name in ("selector", "since", "container", "tail", "kubeconfig",
                                                         "context") if getattr(args, name) is not None]
    if args.k8s is None:
        if given:
            raise InvalidInput(f"{', '.join(given)}: for pod logs only; add --k8s NAMESPACE")
        return None
    from . import console
    from .sources import k8s

    query = k8s.PodLogQuery(
        namespace=args.k8s, selector=args.selector or "", container=args.container, previous=args.previous,
        since_s=k8s.parse_duration(args.since) if args.since is not None else None, tail_lines=args.tail)
    with console.byte_progress("reading pod logs", cfg.k8s.max_bytes) as progress:
        return k8s.read_pod_logs(query, cfg.k8s, kubeconfig=args.kubeconfig, context=args.context,
                                 progress=progress)


def _add_pod_log_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("pod logs (Kubernetes: openstack-helm, kolla on k8s)")
    g.add_argument("--k8s", metavar="NAMESPACE", help="read the logs of the pods in NAMESPACE through the API")
    g.add_argument("--selector", "-l", help="label selector, e.g. application=nova (default: every pod)")
    g.add_argument("--since", help="only lines newer than this, e.g. 30m, 2h, 1d (default: all the kubelet kept)")
    g.add_argument("--container", help="only this container of each pod (default: all of them)")
    g.add_argument("--previous", action=argparse.BooleanOptionalAction, default=True,
                   help="also read the log of a restarted container's previous run (default: yes)")
    g.add_argument("--tail", type=int, metavar="LINES", help="only the last LINES lines of each container log")
    g.add_argument("--kubeconfig", help="kubeconfig file (default: k8s.kubeconfig, $KUBECONFIG, ~/.kube/config; "
                                        "in a pod its service account)")
    g.add_argument("--context", help="kubeconfig context (default: its current-context)")


def _process_age_ms() -> float | None:
    """Milliseconds since this process started (interpreter start-up and imports included): what `total`, which
    starts at the analysis, does not show. Linux only (/proc); None elsewhere."""
    try:
        fields = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        started = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22 of stat(5): start time after boot
        return round((time.clock_gettime(time.CLOCK_BOOTTIME) - started) * 1000, 1)
    except (OSError, ValueError, IndexError, AttributeError):
        return None


def cmd_analyze(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_ml()
    _quiet_rag()
    from .analyze import Analyzer

    if sum(bool(x) for x in (args.logs, args.corpus, args.k8s is not None)) != 1:
        raise InvalidInput("rca analyze needs --logs PATH..., --corpus NAME or --k8s NAMESPACE (one of them)")
    if args.logs:
        for p in args.logs:
            if not Path(p).exists():
                raise InputNotFound(f"path not found: {p}")
    cfg = _with_model_flags(cfg, args)
    on_text = None
    if args.stream and not args.json:
        def on_text(chunk: str) -> None:
            sys.stderr.write(chunk)
            sys.stderr.flush()
    startup = _process_age_ms()
    pods = _pod_logs(args, cfg)
    rep = Analyzer(cfg).analyze(
        args.issue, paths=args.logs or None, corpus=args.corpus, mode="fast" if args.fast_mode else None,
        top_k=args.top_k, narrate=not args.no_narrative, on_text=on_text,
        members=pods.files if pods is not None else None)
    if pods is not None:
        rep["source"]["k8s"] = pods.summary
        rep["warnings"] = [*rep.get("warnings", []), *pods.warnings()]
    if startup is not None:
        rep["timings_ms"] = {"startup": startup, **rep["timings_ms"]}
    if on_text is not None:
        sys.stderr.write("\n")
    if args.json:
        _print_json(rep)
    else:
        from . import console

        console.report(rep, details=args.details)
    return 0


def cmd_corpora(args: argparse.Namespace, cfg: RCAConfig) -> int:
    """The ingested corpora, and any left out as unreadable (so a vanished corpus is never silent)."""
    from . import corpus

    out = corpus.listing(cfg)
    if args.prune_index:
        out["pruned"] = _prune_index(cfg, out)
    if args.json:
        _print_json(out)
        return 0
    from . import console

    for r in out["corpora"]:
        console.out.print(f"{r['name']:<24} {r['records']:>9,} records  model v{r['model']['version']}  "
                          f"{'indexed' if r.get('indexed') else 'fast mode only'}  {r.get('updated', '')}")
    for r in out["skipped"]:
        console.out.print(f"{r['name']:<24} unreadable: {r['error']}; run rca ingest for it again")
    if not out["corpora"] and not out["skipped"]:
        console.out.print("no corpora yet: rca ingest PATH --corpus NAME")
    if args.prune_index:
        console.out.print(f"semantic index: removed {len(out['pruned'])} collection(s) no corpus owns"
                          + (f" ({', '.join(out['pruned'])})" if out["pruned"] else ""))
    return 0


def _prune_index(cfg: RCAConfig, listing: dict) -> list[str]:
    """Drop Chroma collections of this project that no corpus owns: deleted corpora, the older naming."""
    if listing["skipped"]:
        raise InvalidInput("some corpora are unreadable (listed above); ingest or delete them before "
                           "--prune-index, which would otherwise drop their semantic index")
    _quiet_rag()
    from .analyze import Analyzer

    idx = Analyzer(cfg).semantic_index()
    orphans = idx.orphans([r["name"] for r in listing["corpora"]])
    idx.drop_collections(orphans)
    return orphans


def cmd_search(args: argparse.Namespace, cfg: RCAConfig) -> int:
    _quiet_rag()
    from .analyze import Analyzer
    from .corpus import load

    load(cfg, args.corpus)  # a clear error for an unknown corpus before any model loads
    hits = Analyzer(cfg).semantic_index().search(args.corpus, args.text, args.k)
    if args.json:
        _print_json(hits)
    else:
        from . import console

        for h in hits:
            console.out.print(f"{h['similarity']:.3f}  {console.escape(str(h.get('service')))}  "
                              f"{console.escape(h['text'][:140])}  (x{h.get('count', 1)})")
    return 0


def cmd_serve(args: argparse.Namespace, cfg: RCAConfig) -> int:
    from .serve_cmd import exec_server, serve_command

    exec_server(*serve_command(args.host, args.port, args.service, args.config, cfg.home))
    return 0  # not reached: this process became the server


def cmd_dashboard(args: argparse.Namespace, cfg: RCAConfig) -> int:
    from .serve_cmd import dashboard_command, exec_server

    exec_server(*dashboard_command(args.host, args.port, args.config, cfg.home))
    return 0  # not reached: this process became the server


# -- argument parsing -----------------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line that says where to look, like every other rca error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        _fail(f"{message} (see `{self.prog} --help`)")
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="rca", description="Root-cause analysis for OpenStack logs.")
    ap.add_argument("--version", action="version", version=f"openstack-rca {__version__}")
    ap.add_argument("--config", help="TOML config file (default: $RCA_CONFIG, else $RCA_HOME/config.toml)")
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    def add(name: str, fn: Callable, help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        p.set_defaults(fn=fn)
        return p

    p = add("parse", cmd_parse, "Parse log files/directories (.gz too) into records with template ids.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--summary", action="store_true", help="with --json: print the summary instead of records")
    p.add_argument("--no-cache", action="store_true", help="parse again even if the parsed cache has these files")
    p.add_argument("--workers", type=int, help="worker processes (default: parse.workers, 0 = one per core)")
    p.add_argument("--top", type=int, default=10, help="templates to list in the summary (default 10)")

    p = add("simulate", cmd_simulate, "Write a realistic OpenStack log set with one injected fault.")
    p.add_argument("--fault", help="fault to inject (see --list)")
    p.add_argument("--out", help="output directory")
    p.add_argument("--lines", type=int, default=5000, help="approximate total lines (default 5000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layout", default="oslo", help="oslo (default), journald or cri")
    p.add_argument("--list", action="store_true", help="list the faults and exit")

    p = add("cache", cmd_cache, "Inspect or clear caches under RCA_HOME.")
    csub = p.add_subparsers(dest="cache_cmd", required=True, metavar="ACTION", parser_class=_Parser)
    for name, help_ in (("info", "what is cached, and where"), ("clear", "delete cached data")):
        cp = csub.add_parser(name, help=help_)
        cp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        if name == "clear":
            cp.add_argument("--target", choices=("all", "parsed", "templates", "embeddings"), default="all",
                            help="all = this RCA_HOME's caches; embeddings = the machine's embedding cache "
                                 "(shared by every RCA_HOME), only when named")

    p = add("train", cmd_train, "Train the DeepLog LSTM and TF-IDF on logs; register the model in MLflow.")
    p.add_argument("--logs", nargs="+", required=True, metavar="PATH", help="log files or directories (mostly normal)")
    p.add_argument("--epochs", type=int, help="training epochs (default: model.epochs)")
    p.add_argument("--window", type=int, help="events of history per prediction (default: model.window)")
    p.add_argument("--top-g", dest="top_g", type=int, help="anomalous when outside the g likeliest (default: model.top_g)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--alias", help="alias the promotion gate moves (default: model.alias)")
    gate = p.add_mutually_exclusive_group()
    gate.add_argument("--promote", dest="promote", action="store_true", default=None,
                      help="move the alias to the new version whatever its metrics")
    gate.add_argument("--no-promote", dest="promote", action="store_false",
                      help="register the new version without moving the alias")

    p = add("models", cmd_models, "The model registry: list versions, promote one to the alias.")
    msub = p.add_subparsers(dest="models_cmd", required=True, metavar="ACTION", parser_class=_Parser)
    mp = msub.add_parser("list", help="registered versions, aliases and metrics")
    mp.add_argument("--json", action="store_true", help="machine-readable output on stdout")
    mp.add_argument("--alias", help=argparse.SUPPRESS)
    mp = msub.add_parser("promote", help="point the alias (default champion) at VERSION")
    mp.add_argument("version", metavar="VERSION")
    mp.add_argument("--alias", help="alias to move (default: model.alias)")
    mp.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    p = add("score", cmd_score, "Score logs with the registered model: the most anomalous lines per session.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--top", type=int, default=3, help="lines per session (default 3)")
    p.add_argument("--sessions", type=int, default=10, help="sessions to show, most anomalous first (default 10)")
    p.add_argument("--alias", help="model alias to load (default: model.alias)")

    p = add("evaluate", cmd_evaluate, "Session-level precision/recall/F1 on simulated faults, FPR on normal logs.")
    p.add_argument("--logs", nargs="+", required=True, metavar="PATH",
                   help="simulated log sets (with ground_truth.json) and/or normal logs")
    p.add_argument("--alias", help="model alias to evaluate (default: model.alias)")

    p = add("ingest", cmd_ingest, "Parse, score and index logs once as a named corpus, for fast analysis.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="log files, directories or archives (or --k8s)")
    p.add_argument("--corpus", required=True, help="corpus name (letters, digits, . _ -)")
    p.add_argument("--no-index", action="store_true", help="skip the semantic index (the corpus works in fast mode)")
    p.add_argument("--alias", help="model alias to score with (default: model.alias)")
    _add_pod_log_args(p)

    p = add("analyze", cmd_analyze, "Find the root cause of an issue in logs: evidence, component, timeline, narrative.")
    p.add_argument("--issue", required=True, help="what the operator sees, e.g. 'instances fail to boot since 14:00'")
    p.add_argument("--logs", nargs="+", metavar="PATH", help="log files or directories")
    p.add_argument("--corpus", help="an ingested corpus instead of --logs (see rca ingest)")
    p.add_argument("--fast-mode", action="store_true", help="LSTM + TF-IDF only, no semantic search")
    p.add_argument("--top-k", type=int, help="evidence lines to report (default: analyze.top_k, 10)")
    p.add_argument("--no-narrative", action="store_true", help="skip the narrative (Claude or offline)")
    p.add_argument("--stream", action="store_true", help="print Claude's narrative on stderr as it is written")
    p.add_argument("--details", action="store_true", help="also print each evidence item's signal scores")
    p.add_argument("--alias", help="model alias to load (default: model.alias)")
    _add_pod_log_args(p)

    p = add("corpora", cmd_corpora, "List ingested corpora (and any unreadable ones).")
    p.add_argument("--prune-index", action="store_true",
                   help="also remove Chroma collections no corpus owns (deleted corpora, older naming)")

    p = add("search", cmd_search, "Semantic search over an ingested corpus's templates.")
    p.add_argument("text", help="what to look for, in any words")
    p.add_argument("--corpus", required=True)
    p.add_argument("-k", type=int, default=10, help="results (default 10)")

    p = add("templates", cmd_templates, "List the templates learned so far (the model's future vocabulary).")
    p.add_argument("--limit", type=int, default=50)

    help_ = ("Serve the RCA service (HTTP, and OIP v2 gRPC on RCA_GRPC_PORT) with BentoML; needs RCA_API_TOKEN "
             "(or RCA_ALLOW_ANONYMOUS=1).")
    p = sub.add_parser("serve", help=help_, description=help_)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    p.add_argument("--service", default="RCA", choices=("RCA", "Scorer"),
                   help="RCA (default: the whole service) or Scorer (the LSTM scorer alone, for RCA_SCORER_URL)")
    p.set_defaults(fn=cmd_serve)
    help_ = "Run the Streamlit RCA console (in-process engine, or the service at RCA_API_URL)."
    p = sub.add_parser("dashboard", help=help_, description=help_)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    p.set_defaults(fn=cmd_dashboard)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        if getattr(args, "workers", None) is not None and args.workers < 0:
            raise InvalidInput(f"--workers must be >= 0 (got {args.workers}); 0 means one per core")
        if getattr(args, "top_k", None) is not None and args.command == "analyze" and not 1 <= args.top_k <= 100:
            raise InvalidInput(f"--top-k must be 1..100 (got {args.top_k})")
        if getattr(args, "lines", None) is not None and args.command == "simulate" and args.lines < 1:
            raise InvalidInput(f"--lines must be positive (got {args.lines})")
        cfg = load(args.config)
        return args.fn(args, cfg)
    except InputNotFound as exc:
        _fail(f"{exc}; check the path (rca {args.command} takes files or directories)")
        return 2
    except InvalidInput as exc:
        _fail(str(exc))
        return 2
    except RCAError as exc:
        _fail(str(exc))
        return 1
    except BrokenPipeError:
        # `rca parse --json … | head`: the reader left; that is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        _fail("interrupted")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place that turns surprises into one line
        if os.environ.get("RCA_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (rerun with RCA_DEBUG=1 for a traceback)")
        return 1


def _fail(message: str) -> None:
    sys.stderr.write(f"rca: error: {message}\n")


if __name__ == "__main__":
    raise SystemExit(main())
