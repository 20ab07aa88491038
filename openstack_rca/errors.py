"""A small error hierarchy on builtin types; shells map each to an exit code or HTTP status once."""

from __future__ import annotations

import os
import re


class RCAError(Exception):
    """Base of every error the library raises on purpose (CLI exit 1, HTTP 500 without a trace)."""


class InvalidInput(RCAError, ValueError):
    """The caller gave something unusable: bad argument, bad config value (CLI exit 2, HTTP 422)."""


class InputNotFound(InvalidInput, FileNotFoundError):
    """A path the caller named does not exist (CLI exit 2, HTTP 404)."""


class ConfigError(InvalidInput):
    """A config file or RCA_* variable holds a value that cannot be used (CLI exit 2)."""


class StoreBusy(RCAError):
    """Another writer holds the corpus (HTTP 409; retry shortly)."""


class StorageFull(RCAError, OSError):
    """The disk (or quota) under RCA_HOME is full; nothing was published (HTTP 507)."""


class DependencyDown(RCAError):
    """A collaborator (scorer, MLflow, Chroma, S3) does not answer (HTTP 503 with Retry-After)."""


class UntrustedInput(InvalidInput):
    """Input refused for safety: a decompression bomb, an archive member escaping its root (HTTP 422)."""


_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@")


def redact(text: object, home: str | os.PathLike | None = None) -> str:
    """``text`` fit for a caller or a log: ``scheme://user:pass@host`` loses ``user:pass@``, and absolute paths
    under RCA_HOME (``home``, default ``$RCA_HOME`` or ``~/.openstack-rca``) become relative to it."""
    out = _CREDENTIALS.sub(r"\1", str(text))
    root = str(home or os.environ.get("RCA_HOME") or os.path.expanduser("~/.openstack-rca")).rstrip("/")
    if root:
        real = os.path.realpath(root)
        for r in sorted({root, real}, key=len, reverse=True):
            out = out.replace(r + "/", "").replace(r, ".")
    return out
