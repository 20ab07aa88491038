"""Which version ``models:/<name>@<alias>`` points to, asked without importing MLflow (two seconds of imports).

Every load asks this one question; only when the answer is a version with no local copy does the registry need the
MLflow client, to download it. A sqlite store is read directly (read-only), a tracking server through its REST
API with MLflow's own credentials; any other store answers ``None``: ask the client.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Mapping, Optional

TIMEOUT_S = 5.0
"""At most this long for the tracking server to answer (less if MLFLOW_HTTP_REQUEST_TIMEOUT says so): when it is
down the last local copy serves, and the operator should not wait for it."""


class AliasLookupError(RuntimeError):
    """The registry answered, or failed to, without a version: the caller falls back to its last local copy."""


def alias_version(uri: str, name: str, alias: str, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """The version ``alias`` points to; ``None`` when this store needs the MLflow client to tell."""
    env = os.environ if env is None else env
    if env.get("MLFLOW_WORKSPACE") or env.get("MLFLOW_TRACKING_AUTH"):
        return None  # workspaces and auth plugins are the client's business
    if uri.startswith("sqlite:///"):
        return _from_sqlite(uri[len("sqlite:///"):].split("?", 1)[0], name, alias)
    if uri.startswith(("http://", "https://")):
        return _from_server(uri, name, alias, env)
    return None


def _from_sqlite(path: str, name: str, alias: str) -> str:
    if not os.path.isfile(path):
        raise AliasLookupError(f"no MLflow store at {path}")
    con = sqlite3.connect(f"file:{urllib.parse.quote(path)}?mode=ro", uri=True, timeout=TIMEOUT_S)
    try:
        cols = {row[1] for row in con.execute("PRAGMA table_info(registered_model_aliases)")}
        if not cols:
            raise AliasLookupError(f"the MLflow store at {path} has no model aliases (run `rca train`)")
        sql = "SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?"
        if "workspace" in cols:
            sql += " AND workspace = 'default'"
        row = con.execute(sql, (name, alias)).fetchone()
    finally:
        con.close()
    if row is None:
        raise AliasLookupError(f"registered model alias {alias} not found for {name}")
    return str(row[0])


def _from_server(uri: str, name: str, alias: str, env: Mapping[str, str]) -> Optional[str]:
    query = urllib.parse.urlencode({"name": name, "alias": alias})
    uri, user, password = _split_credentials(uri)  # never in a request line or an error message
    req = urllib.request.Request(f"{uri.rstrip('/')}/api/2.0/mlflow/registered-models/alias?{query}")
    if user is None and env.get("MLFLOW_TRACKING_USERNAME") and env.get("MLFLOW_TRACKING_PASSWORD"):
        user, password = env["MLFLOW_TRACKING_USERNAME"], env["MLFLOW_TRACKING_PASSWORD"]
    if user is not None:  # before the token, as MLflow
        basic = base64.b64encode(f"{user}:{password or ''}".encode())
        req.add_header("Authorization", f"Basic {basic.decode()}")
    elif env.get("MLFLOW_TRACKING_TOKEN"):
        req.add_header("Authorization", f"Bearer {env['MLFLOW_TRACKING_TOKEN']}")
    timeout = min(TIMEOUT_S, float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT") or TIMEOUT_S))
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=_tls(uri, env)) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("message", "")
        except (ValueError, OSError, AttributeError):
            detail = ""
        raise AliasLookupError(f"{uri} answered HTTP {exc.code} {detail}".rstrip()) from None
    try:
        return str(body["model_version"]["version"])
    except (KeyError, TypeError):
        raise AliasLookupError(f"{uri} gave no version for {name}@{alias}") from None


def _split_credentials(uri: str) -> tuple[str, Optional[str], Optional[str]]:
    """``http://user:pass@host/x`` -> (``http://host/x``, user, pass)."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return uri, None, None
    creds, host = parts.netloc.rsplit("@", 1)
    user, _, password = creds.partition(":")
    return urllib.parse.urlunsplit(parts._replace(netloc=host)), urllib.parse.unquote(user), \
        urllib.parse.unquote(password)


def _tls(uri: str, env: Mapping[str, str]) -> Optional[ssl.SSLContext]:
    """MLflow's TLS settings: its CA bundle, its client certificate, or no verification when told so."""
    if not uri.startswith("https://"):
        return None
    ctx = ssl.create_default_context(cafile=env.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None)
    if env.get("MLFLOW_TRACKING_INSECURE_TLS", "").lower() in ("true", "1"):
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        ctx.load_cert_chain(env["MLFLOW_TRACKING_CLIENT_CERT_PATH"])
    return ctx
