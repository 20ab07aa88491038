"""One typed configuration object, built once and passed down.

Precedence: defaults < TOML config file < ``RCA_*`` environment variables.
The file is ``$RCA_CONFIG`` if set, else ``$RCA_HOME/config.toml`` if it exists; never the working directory.
Environment names are the field path upper-cased: ``parse.workers`` -> ``RCA_PARSE_WORKERS``, ``home`` -> ``RCA_HOME``.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class ParseConfig:
    """How logs are read and parsed."""

    workers: int = 0
    """Worker processes for large inputs; 0 = one per CPU core."""
    parallel_min_bytes: int = 24 * 1024 * 1024
    """Inputs smaller than this are parsed in-process: forking would cost more than it saves (with the C row
    builder one process wins up to ~16 MB on 2 cores, workers from ~33 MB)."""
    chunk_bytes: int = 2 * 1024 * 1024
    """Files are parsed in record-aligned chunks of about this size: small batches keep memory warm and reused."""
    max_line_bytes: int = 64 * 1024
    """Longer lines are truncated to this and flagged."""
    journal_year: int = 0
    """Year for syslog/journald timestamps, which carry none; 0 = the file's modification year."""
    learn_templates: bool = True
    """Add templates first seen in this run to the persistent template store."""
    max_uncompressed_bytes: int = 2 * 1024**3
    """A compressed file or an archive (.tar, .tar.gz, .tgz, .zip) whose contents decompress to more is refused
    as a possible decompression bomb."""
    max_compression_ratio: int = 200
    """Same for contents more than this many times the size on disk (logs compress 5-30x); checked once more
    than 16 MiB came out."""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"parse.workers must be >= 0 (got {self.workers}); 0 means one per core")
        if self.chunk_bytes < 64 * 1024:
            raise ConfigError(f"parse.chunk_bytes must be >= 65536 (got {self.chunk_bytes})")
        if self.max_line_bytes < 1024:
            raise ConfigError(f"parse.max_line_bytes must be >= 1024 (got {self.max_line_bytes})")
        if self.max_uncompressed_bytes < 1024:
            raise ConfigError(f"parse.max_uncompressed_bytes must be >= 1024 (got {self.max_uncompressed_bytes})")
        if self.max_compression_ratio < 2:
            raise ConfigError(f"parse.max_compression_ratio must be >= 2 (got {self.max_compression_ratio})")


@dataclass(frozen=True)
class CacheConfig:
    """The parsed-record cache (Parquet, keyed by content hash + parser version)."""

    enabled: bool = True


@dataclass(frozen=True)
class ModelConfig:
    """Where the model lives (MLflow) and how it is trained by default."""

    name: str = "openstack-rca-lstm"
    alias: str = "champion"
    tracking_uri: str = ""
    """'' = $MLFLOW_TRACKING_URI if set, else a local sqlite store under RCA_HOME (the embedded default)."""
    artifact_location: str = ""
    """Where a new experiment keeps artifacts: '' = under RCA_HOME; s3://bucket/prefix in production."""
    experiment: str = "openstack-rca"
    window: int = 10
    top_g: int = 15
    epochs: int = 8
    promotion_tolerance: float = 0.01
    """How much worse (absolute) a new version's held-out top_g_accuracy and session_false_positive_rate may be
    than the champion's for `rca train` to move the alias to it (model_training/promotion.py)."""

    def __post_init__(self) -> None:
        if not self.name or not self.alias:
            raise ConfigError("model.name and model.alias must not be empty")
        if not 0 <= self.promotion_tolerance < 1:
            raise ConfigError(f"model.promotion_tolerance must be in [0, 1) (got {self.promotion_tolerance}); "
                              "set RCA_MODEL_PROMOTION_TOLERANCE=0.01")


@dataclass(frozen=True)
class RetrievalConfig:
    """Semantic search: sentence-transformer embeddings in Chroma (embedded, or a Chroma server)."""

    embedding_model: str = "all-MiniLM-L6-v2"
    """A model name with a packaged offline copy (all-MiniLM-L6-v2), or a local sentence-transformers directory."""
    chroma_host: str = ""
    """'' = $CHROMA_HOST if set, else embedded Chroma under RCA_HOME/chroma. The token only ever comes from
    $CHROMA_TOKEN (a secret: never in a config file)."""
    chroma_port: int = 0
    """0 = $CHROMA_PORT if set, else 8000."""
    chroma_ssl: bool = False
    query_k: int = 50
    """Nearest templates a semantic query asks Chroma for."""
    embed_batch: int = 16
    """Texts per embedding call: small batches pad less (templates vary in length), measured faster here."""
    embedding_backend: str = "onnx"
    """onnx (the model exported once to ONNX Runtime, verified against sentence-transformers) or torch."""
    cache_dir: str = ""
    """Per machine, shared by every RCA_HOME: the exported embedding model, its check and the embeddings already
    computed. '' = $XDG_CACHE_HOME/openstack-rca, else ~/.cache/openstack-rca."""
    cache_max_vectors: int = 200_000
    """Most embeddings kept in that cache (~1.5 KB each, ~300 MB at the default); past it the oldest go."""

    def __post_init__(self) -> None:
        if not self.embedding_model:
            raise ConfigError("retrieval.embedding_model must not be empty")
        if self.embedding_backend not in ("onnx", "torch"):
            raise ConfigError(f"retrieval.embedding_backend must be onnx or torch (got {self.embedding_backend!r})")
        if self.query_k < 1 or self.embed_batch < 1 or self.cache_max_vectors < 1:
            raise ConfigError("retrieval.query_k, retrieval.embed_batch and retrieval.cache_max_vectors must be >= 1")

    def host(self, env: typing.Mapping[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        return self.chroma_host or env.get("CHROMA_HOST", "")

    def cache_path(self, env: typing.Mapping[str, str] | None = None) -> Path:
        env = os.environ if env is None else env
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        return Path(env.get("XDG_CACHE_HOME") or "~/.cache").expanduser() / "openstack-rca"

    def port(self, env: typing.Mapping[str, str] | None = None) -> int:
        env = os.environ if env is None else env
        if self.chroma_port:
            return self.chroma_port
        raw = env.get("CHROMA_PORT") or "8000"
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"CHROMA_PORT must be a port number (got {raw!r})") from None


@dataclass(frozen=True)
class NarrativeConfig:
    """The Claude narrator. The key only ever comes from $ANTHROPIC_API_KEY; $ANTHROPIC_BASE_URL is honoured."""

    enabled: bool = True
    model: str = "claude-sonnet-5-5"
    """A current Sonnet-class model: known to the installed SDK and not in its DEPRECATED_MODELS (a test checks)."""
    max_tokens: int = 800
    timeout_s: float = 30.0
    max_retries: int = 2
    """The SDK's own retries on 429/5xx/connection errors before the offline narrative takes over."""

    def __post_init__(self) -> None:
        if self.timeout_s <= 0 or self.max_tokens < 64 or self.max_retries < 0:
            raise ConfigError("narrative: timeout_s must be > 0, max_tokens >= 64, max_retries >= 0")


@dataclass(frozen=True)
class AnalyzeConfig:
    """Defaults for `rca analyze` and the service's /analyze."""

    mode: str = "hybrid"
    """hybrid (LSTM + TF-IDF + semantic search) or fast (no embeddings)."""
    top_k: int = 10

    def __post_init__(self) -> None:
        if self.mode not in ("hybrid", "fast"):
            raise ConfigError(f"analyze.mode must be hybrid or fast (got {self.mode!r})")
        if not 1 <= self.top_k <= 100:
            raise ConfigError(f"analyze.top_k must be 1..100 (got {self.top_k})")


@dataclass(frozen=True)
class StoreConfig:
    """The corpus store (ingested corpora)."""

    lock_timeout_s: float = 5.0
    """How long a writer waits for another writer of the same corpus before answering StoreBusy (HTTP 409)."""
    grace_s: float = 60.0
    """Versions older than the previous one are deleted only after this long (a reader may still hold them)."""
    url: str = ""
    """'' = corpora under RCA_HOME; ``s3://bucket/prefix`` = in S3, shared by every replica (env RCA_CORPUS_STORE)."""
    lease_s: float = 900.0
    """S3 only: how long a writer's lease on a corpus lasts; a writer killed mid-ingest blocks the name this long."""

    def __post_init__(self) -> None:
        if self.lock_timeout_s < 0 or self.grace_s < 0 or self.lease_s <= 0:
            raise ConfigError("store.lock_timeout_s and store.grace_s must be >= 0, store.lease_s > 0")
        if self.url and not self.url.startswith("s3://"):
            raise ConfigError(f"store.url {self.url!r}: use s3://BUCKET/PREFIX, or leave it empty for RCA_HOME")


@dataclass(frozen=True)
class K8sConfig:
    """Pod logs through the Kubernetes API (``rca ingest --k8s NAMESPACE``, ``rca analyze --k8s``)."""

    kubeconfig: str = ""
    """'' = in a pod, its service account; else $KUBECONFIG, else ~/.kube/config (``--kubeconfig`` wins)."""
    context: str = ""
    """kubeconfig context; '' = its current-context (``--context`` wins)."""
    max_bytes: int = 64 * 1024 * 1024
    """Most bytes read of one container's log (the API's limitBytes, which keeps the oldest): bound it by time
    with --since or by lines with --tail to keep the newest."""
    timestamps: bool = True
    """Ask for the kubelet's timestamp on every line: the time of lines that carry none of their own."""
    timeout_s: float = 30.0
    """Per API call (connecting is bounded at 10 s)."""

    def __post_init__(self) -> None:
        if self.max_bytes < 1024:
            raise ConfigError(f"k8s.max_bytes must be >= 1024 (got {self.max_bytes})")
        if self.timeout_s <= 0:
            raise ConfigError(f"k8s.timeout_s must be > 0 (got {self.timeout_s})")


@dataclass(frozen=True)
class RCAConfig:
    """Everything the library needs to know, in one place."""

    home: Path = field(default_factory=lambda: Path("~/.openstack-rca").expanduser())
    parse: ParseConfig = field(default_factory=ParseConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    narrative: NarrativeConfig = field(default_factory=NarrativeConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    k8s: K8sConfig = field(default_factory=K8sConfig)

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def parsed_cache_dir(self) -> Path:
        return self.cache_dir / "parsed"

    @property
    def models_dir(self) -> Path:
        """Local copies of registry models (the fallback when the registry is unreachable)."""
        return self.home / "models"

    def tracking_uri(self, env: typing.Mapping[str, str] | None = None) -> str:
        env = os.environ if env is None else env
        return self.model.tracking_uri or env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{self.home / 'mlflow' / 'mlflow.db'}"

    @property
    def corpora_dir(self) -> Path:
        """Ingested corpora: parsed and scored records, ready for analysis."""
        return self.home / "corpora"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def templates_path(self) -> Path:
        return self.home / "templates" / "templates.json"

    def replace(self, **changes: typing.Any) -> "RCAConfig":
        """A copy with top-level fields changed (sections are replaced whole)."""
        return dataclasses.replace(self, **changes)


def _coerce(value: typing.Any, typ: typing.Any, name: str) -> typing.Any:
    typ = typing.get_origin(typ) or typ
    try:
        if typ is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(text)
        if typ is int:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if typ is Path:
            return Path(str(value)).expanduser()
        if typ is float:
            return float(value)
        return typ(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot use {value!r} as {typ.__name__}") from None


def _build(cls: type, values: dict[str, typing.Any], prefix: str, env: typing.Mapping[str, str]) -> typing.Any:
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, typing.Any] = {}
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - known
    if unknown:
        where = prefix.rstrip(".") or "top level"
        raise ConfigError(f"unknown config key(s) {sorted(unknown)} at {where}; known: {sorted(known)}")
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            section = values.get(f.name, {})
            if not isinstance(section, dict):
                raise ConfigError(f"{path} must be a table")
            kwargs[f.name] = _build(typ, section, path + ".", env)
            continue
        env_name = "RCA_" + path.replace(".", "_").upper()
        if env_name in env and env[env_name] != "":
            kwargs[f.name] = _coerce(env[env_name], typ, env_name)
        elif f.name in values:
            kwargs[f.name] = _coerce(values[f.name], typ, path)
    return cls(**kwargs)


def load(path: str | os.PathLike[str] | None = None, env: typing.Mapping[str, str] | None = None) -> RCAConfig:
    """Build the config from defaults, an optional TOML file and ``RCA_*`` variables."""
    env = os.environ if env is None else env
    home = Path(env.get("RCA_HOME") or "~/.openstack-rca").expanduser()
    if env.get("RCA_CORPUS_STORE") and not env.get("RCA_STORE_URL"):  # the name the chart and docs use
        env = {**env, "RCA_STORE_URL": env["RCA_CORPUS_STORE"]}
    if path is None and env.get("RCA_CONFIG"):
        path = env["RCA_CONFIG"]
    file_values: dict[str, typing.Any] = {}
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise ConfigError(f"config file not found: {p} (unset RCA_CONFIG or create the file)")
    else:
        p = home / "config.toml"
    if p.is_file():
        try:
            file_values = tomllib.loads(p.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from None
    return _build(RCAConfig, file_values, "", env)
