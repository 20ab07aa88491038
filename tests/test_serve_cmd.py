"""`rca serve` / `rca dashboard` before any server starts: what they refuse, and the command and environment they
hand over. tests/test_wheel.py starts both for real from a clean install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from openstack_rca.errors import InvalidInput
from openstack_rca.serve_cmd import dashboard_command, project_root, serve_command

RCA = Path(sys.executable).parent / "rca"


def _rca(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(RCA), *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


@pytest.fixture
def bare_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RCA_", "PYTHONPATH"))}
    return {**env, "RCA_HOME": str(tmp_path / "home")}


def test_serve_refuses_without_a_token_in_one_line(bare_env, tmp_path):
    r = _rca("serve", env=bare_env, cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("rca: error: refusing to serve without a token") and "RCA_ALLOW_ANONYMOUS=1" in line


@pytest.mark.parametrize("args, words", [(["serve", "--port", "70000"], "--port must be 1..65535"),
                                         (["dashboard", "--port", "0"], "--port must be 1..65535"),
                                         (["serve", "--service", "Nope"], "invalid choice")])
def test_bad_arguments_exit_2(bare_env, tmp_path, args, words):
    r = _rca(*args, env={**bare_env, "RCA_ALLOW_ANONYMOUS": "1"}, cwd=tmp_path)
    assert r.returncode == 2 and words in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_serve_command_runs_this_distributions_service_from_anywhere(tmp_path):
    argv, env = serve_command("127.0.0.1", 3001, "Scorer", "rca.toml", Path("rel-home"),
                              env={"RCA_API_TOKEN": "t", "PATH": os.environ["PATH"]})
    assert argv[:5] == [sys.executable, "-m", "bentoml", "serve", "bentos.service:Scorer"]
    assert argv[5:] == ["--host", "127.0.0.1", "--port", "3001"]
    # BentoML workers may change directory: the data home and config file travel as absolute paths
    assert env["RCA_HOME"] == str(Path("rel-home").resolve()) and env["RCA_CONFIG"] == str(Path("rca.toml").resolve())
    # whatever the working directory, the server imports this distribution's bentos (no token printed anywhere)
    code = "import bentos, sys; sys.stdout.write(bentos.__file__)"
    where = subprocess.run([sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True,
                           timeout=60).stdout
    assert Path(where).resolve() == project_root() / "bentos" / "__init__.py"


def test_serve_refuses_anonymous_unless_asked(tmp_path):
    with pytest.raises(InvalidInput, match="RCA_API_TOKEN"):
        serve_command("0.0.0.0", 3000, "RCA", None, tmp_path, env={"RCA_ALLOW_ANONYMOUS": "0"})
    argv, _ = serve_command("127.0.0.1", 3000, "RCA", None, tmp_path, env={"RCA_ALLOW_ANONYMOUS": "yes"})
    assert "bentos.service:RCA" in argv


def test_dashboard_command_runs_the_packaged_app_headless(tmp_path):
    argv, env = dashboard_command("127.0.0.1", 8599, None, tmp_path, env={})
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    app = Path(argv[4])
    assert app == project_root() / "dashboard" / "app.py" and app.is_file()
    assert (app.parent / ".streamlit" / "config.toml").is_file()  # the viewer toolbar travels with the app
    flags = dict(zip(argv[5::2], argv[6::2]))
    assert flags == {"--server.headless": "true", "--server.address": "127.0.0.1", "--server.port": "8599",
                     "--browser.gatherUsageStats": "false"}
    assert env["RCA_HOME"] == str(tmp_path.resolve())
