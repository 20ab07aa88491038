"""The dashboard's two backends behind one small interface.

* ``InProcessBackend``: an ``Analyzer`` in the Streamlit process (the default; RCA_HOME as for the CLI).
* ``HTTPBackend``: the BentoML service (``RCA_API_URL``, bearer token from ``RCA_API_TOKEN``).

Both answer ``model()``, ``corpora()``, ``analyze(...)``, ``ingest(...)`` and ``refresh_model()`` with plain dicts
(the report is the same dict either way) and raise ``BackendError`` with a one-line, readable message for anything
the operator can act on. Nothing here imports Streamlit, so the module is usable (and testable) on its own.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence

from openstack_rca.errors import RCAError

DEFAULT_TIMEOUT_S = 300.0  # analyze and ingest: a large upload takes a while
INFO_TIMEOUT_S = 10.0  # GET /model and /corpora, asked on every page refresh


class BackendError(RCAError):
    """A failure the dashboard shows as a one-line message (bad input, missing corpus, service down...)."""


@dataclass(frozen=True)
class Upload:
    """One uploaded log file: its name (kept, so services are detected from it) and its bytes."""

    name: str
    data: bytes


class Backend(Protocol):
    label: str

    def model(self) -> dict[str, Any]: ...

    def corpora(self) -> list[dict[str, Any]]: ...

    def analyze(self, issue: str, *, corpus: str | None = None, uploads: Sequence[Upload] | None = None,
                mode: str = "fast", top_k: int = 10, narrate: bool = True) -> dict[str, Any]: ...

    def ingest(self, name: str, uploads: Sequence[Upload], *, index: bool = True) -> dict[str, Any]: ...

    def refresh_model(self) -> dict[str, Any]: ...


def _model_dict(m: Any) -> dict[str, Any]:
    return {"name": m.name, "version": m.version, "alias": m.alias, "source": m.source, "loaded_at": m.loaded_at}


def _safe_name(name: str, taken: set[str]) -> str:
    """The file's own base name (no directories, nothing hidden), made unique within one upload."""
    base = re.sub(r"[^A-Za-z0-9._@+-]", "_", Path(str(name).replace("\\", "/")).name).lstrip(".") or "upload.log"
    stem, dot, ext = base.partition(".")
    out, i = base, 1
    while out in taken:
        i += 1
        out = f"{stem}-{i}{dot}{ext}"
    taken.add(out)
    return out


def uploads_text(uploads: Sequence[Upload]) -> str:
    """Uploaded files as one log text (the HTTP service's ``logs``): gzip is unpacked, bytes decoded leniently."""
    parts = []
    for u in uploads:
        data = u.data
        if data[:2] == b"\x1f\x8b":
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise BackendError(f"{u.name}: not a readable gzip file ({exc})") from None
        text = data.decode("utf-8", errors="replace")
        parts.append(text if text.endswith("\n") or not text else text + "\n")
    return "".join(parts)


class InProcessBackend:
    """The engine in this process: one ``Analyzer`` (the model loads once, corpora stay cached)."""

    def __init__(self, analyzer: Any) -> None:
        self.analyzer = analyzer
        self.label = f"in-process (RCA_HOME={analyzer.cfg.home})"

    def model(self) -> dict[str, Any]:
        return _model_dict(self.analyzer.model)

    def refresh_model(self) -> dict[str, Any]:
        return _model_dict(self.analyzer.reload_model())

    def corpora(self) -> list[dict[str, Any]]:
        from openstack_rca.corpus import list_corpora

        return list_corpora(self.analyzer.cfg)

    def _write(self, uploads: Sequence[Upload]) -> Path:
        if not uploads:
            raise BackendError("no log files uploaded")
        tmp = Path(tempfile.mkdtemp(prefix="rca-upload-"))
        taken: set[str] = set()
        for u in uploads:
            (tmp / _safe_name(u.name, taken)).write_bytes(u.data)
        return tmp

    def analyze(self, issue: str, *, corpus: str | None = None, uploads: Sequence[Upload] | None = None,
                mode: str = "fast", top_k: int = 10, narrate: bool = True) -> dict[str, Any]:
        if corpus is not None:
            return self.analyzer.analyze(issue, corpus=corpus, mode=mode, top_k=top_k, narrate=narrate)
        tmp = self._write(uploads or [])
        try:
            return self.analyzer.analyze(issue, paths=[str(tmp)], mode=mode, top_k=top_k, narrate=narrate)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def ingest(self, name: str, uploads: Sequence[Upload], *, index: bool = True) -> dict[str, Any]:
        tmp = self._write(uploads)
        try:
            return self.analyzer.ingest([str(tmp)], name, index=index)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


class HTTPBackend:
    """The BentoML service's HTTP API (``/analyze``, ``/ingest``, ``GET /model``, ``GET /corpora``)."""

    def __init__(self, url: str, token: str = "", timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        import requests

        self.url = url.rstrip("/")
        self.timeout_s = timeout_s
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"
        self.label = f"HTTP service at {self.url}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        import requests

        timeout = self.timeout_s if method == "POST" else min(self.timeout_s, INFO_TIMEOUT_S)
        try:
            r = self.session.request(method, self.url + path, json=body, timeout=timeout)
        except requests.Timeout:
            raise BackendError(f"the RCA service at {self.url} did not answer {path} within {timeout:.0f} s") \
                from None
        except requests.RequestException as exc:
            raise BackendError(f"cannot reach the RCA service at {self.url} ({type(exc).__name__})") from None
        try:
            data = r.json()
        except ValueError:
            data = None
        if r.status_code >= 400:
            msg = data.get("error") if isinstance(data, dict) else ""
            if not msg:
                lines = (r.text or "").strip().splitlines()
                msg = lines[0] if lines else (r.reason or "")
            hint = " (check RCA_API_TOKEN)" if r.status_code == 401 else ""
            raise BackendError(f"the RCA service answered {r.status_code} on {path}: {str(msg)[:500]}{hint}")
        if data is None:
            raise BackendError(f"the RCA service answered {path} with something that is not JSON")
        return data

    def model(self) -> dict[str, Any]:
        return self._call("GET", "/model")

    def refresh_model(self) -> dict[str, Any]:
        # The service loads its model at start (a rollout picks up a new champion); asking again shows which
        # model answers now.
        return self.model()

    def corpora(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/corpora").get("corpora", []))

    def analyze(self, issue: str, *, corpus: str | None = None, uploads: Sequence[Upload] | None = None,
                mode: str = "fast", top_k: int = 10, narrate: bool = True) -> dict[str, Any]:
        body: dict[str, Any] = {"issue": issue, "mode": mode, "top_k": int(top_k), "narrate": bool(narrate)}
        if corpus is not None:
            body["corpus"] = corpus
        else:
            if not uploads:
                raise BackendError("no log files uploaded")
            body["logs"] = uploads_text(uploads)
        return self._call("POST", "/analyze", body)

    def ingest(self, name: str, uploads: Sequence[Upload], *, index: bool = True) -> dict[str, Any]:
        if not uploads:
            raise BackendError("no log files uploaded")
        return self._call("POST", "/ingest", {"corpus": name, "logs": uploads_text(uploads), "index": bool(index)})


def from_env(env: dict[str, str] | None = None) -> Backend:
    """HTTP when RCA_API_URL is set, else the engine in this process (config from RCA_HOME etc.)."""
    env = dict(os.environ) if env is None else env
    url = env.get("RCA_API_URL", "").strip()
    if url:
        timeout = float(env.get("RCA_API_TIMEOUT_S") or DEFAULT_TIMEOUT_S)
        return HTTPBackend(url, env.get("RCA_API_TOKEN", ""), timeout)
    from openstack_rca.analyze import Analyzer
    from openstack_rca.config import load

    return InProcessBackend(Analyzer(load(env=env)))
