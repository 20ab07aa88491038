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
    parallel_min_bytes: int = 4 * 1024 * 1024
    """Inputs smaller than this are parsed in-process: forking would cost more than it saves."""
    chunk_bytes: int = 2 * 1024 * 1024
    """Files are parsed in record-aligned chunks of about this size: small batches keep memory warm and reused."""
    max_line_bytes: int = 64 * 1024
    """Longer lines are truncated to this and flagged."""
    journal_year: int = 0
    """Year for syslog/journald timestamps, which carry none; 0 = the file's modification year."""
    learn_templates: bool = True
    """Add templates first seen in this run to the persistent template store."""

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"parse.workers must be >= 0 (got {self.workers}); 0 means one per core")
        if self.chunk_bytes < 64 * 1024:
            raise ConfigError(f"parse.chunk_bytes must be >= 65536 (got {self.chunk_bytes})")
        if self.max_line_bytes < 1024:
            raise ConfigError(f"parse.max_line_bytes must be >= 1024 (got {self.max_line_bytes})")


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

    def __post_init__(self) -> None:
        if not self.name or not self.alias:
            raise ConfigError("model.name and model.alias must not be empty")


@dataclass(frozen=True)
class RCAConfig:
    """Everything the library needs to know, in one place."""

    home: Path = field(default_factory=lambda: Path("~/.openstack-rca").expanduser())
    parse: ParseConfig = field(default_factory=ParseConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    model: ModelConfig = field(default_factory=ModelConfig)

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
