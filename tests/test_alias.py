"""The alias is resolved without MLflow: from its sqlite store, or from a tracking server's REST API."""

from __future__ import annotations

import base64
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from openstack_rca.alias import AliasLookupError, alias_version

NAME, ALIAS = "openstack-rca-lstm", "champion"


def store(path, *, workspace: bool = True):
    """The aliases table as MLflow 3 creates it (``workspace`` since MLflow 3.x; older stores lack it)."""
    con = sqlite3.connect(path)
    ws = ", workspace VARCHAR(63) DEFAULT 'default' NOT NULL" if workspace else ""
    con.execute(f"CREATE TABLE registered_model_aliases (alias VARCHAR(256) NOT NULL, version INTEGER NOT NULL, "
                f"name VARCHAR(256) NOT NULL{ws})")
    con.execute("INSERT INTO registered_model_aliases (alias, version, name) VALUES (?, ?, ?)", (ALIAS, 3, NAME))
    if workspace:
        con.execute("INSERT INTO registered_model_aliases VALUES (?, ?, ?, ?)", (ALIAS, 9, NAME, "team-b"))
    con.commit()
    con.close()
    return f"sqlite:///{path}"


@pytest.mark.parametrize("workspace", [True, False])
def test_sqlite_store_is_read_directly(tmp_path, workspace):
    uri = store(tmp_path / "mlflow.db", workspace=workspace)
    assert alias_version(uri, NAME, ALIAS, env={}) == "3"
    with pytest.raises(AliasLookupError, match="alias staging not found"):
        alias_version(uri, NAME, "staging", env={})


def test_missing_or_empty_store_is_a_lookup_error(tmp_path):
    with pytest.raises(AliasLookupError, match="no MLflow store"):
        alias_version(f"sqlite:///{tmp_path / 'none.db'}", NAME, ALIAS, env={})
    sqlite3.connect(tmp_path / "empty.db").close()
    with pytest.raises(AliasLookupError, match="no model aliases"):
        alias_version(f"sqlite:///{tmp_path / 'empty.db'}", NAME, ALIAS, env={})
    assert not (tmp_path / "none.db").exists()  # read-only: never creates a store


def test_other_stores_and_workspaces_are_left_to_the_mlflow_client(tmp_path):
    uri = store(tmp_path / "mlflow.db")
    assert alias_version(uri, NAME, ALIAS, env={"MLFLOW_WORKSPACE": "team-b"}) is None
    assert alias_version("databricks", NAME, ALIAS, env={}) is None
    assert alias_version("postgresql://db/mlflow", NAME, ALIAS, env={}) is None


@pytest.fixture
def server():
    """A tracking server's one endpoint: answers when the credentials match, 404 for an unknown alias."""
    seen: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            url = urlparse(self.path)
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            seen.append({"path": url.path, "query": q, "auth": self.headers.get("Authorization")})
            if self.headers.get("Authorization") not in ("Bearer s3cret", "Basic " + base64.b64encode(b"u:p").decode()):
                code, body = 401, {"error_code": "UNAUTHENTICATED", "message": "credentials required"}
            elif q.get("alias") != ALIAS:
                code, body = 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "alias not found"}
            else:
                code, body = 200, {"model_version": {"name": q["name"], "version": "7", "aliases": [ALIAS]}}
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()
    httpd.server_close()


def test_tracking_server_is_asked_over_rest_with_mlflow_credentials(server):
    uri, seen = server
    assert alias_version(uri + "/", NAME, ALIAS, env={"MLFLOW_TRACKING_TOKEN": "s3cret"}) == "7"
    assert seen[-1]["path"] == "/api/2.0/mlflow/registered-models/alias"
    assert seen[-1]["query"] == {"name": NAME, "alias": ALIAS}
    basic = {"MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p", "MLFLOW_TRACKING_TOKEN": "wrong"}
    assert alias_version(uri, NAME, ALIAS, env=basic) == "7"  # basic auth first, as MLflow does
    with pytest.raises(AliasLookupError, match="HTTP 401 credentials required"):
        alias_version(uri, NAME, ALIAS, env={})
    with pytest.raises(AliasLookupError, match="HTTP 404 alias not found"):
        alias_version(uri, NAME, "staging", env={"MLFLOW_TRACKING_TOKEN": "s3cret"})


def test_unreachable_server_fails_fast():
    with pytest.raises(OSError):  # the loader then falls back to its local copy
        alias_version("http://127.0.0.1:9", NAME, ALIAS, env={"MLFLOW_HTTP_REQUEST_TIMEOUT": "2"})
