"""``rca serve`` and ``rca dashboard``: start the packaged shells from any directory, installed or from the repo.

The BentoML service (``bentos``) and the Streamlit console (``dashboard``) ship in the same distribution as this
library, next to it. Each command builds one argv for the real server (``python -m bentoml serve`` /
``python -m streamlit run``) and replaces this process with it, so signals and the exit status are the server's
own: a container's SIGTERM reaches it unchanged. Bad set-ups (no token, a missing extra, a wheel without the
shells) fail here in one line, before a server prints a trace.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import sysconfig
from pathlib import Path
from typing import Mapping, Sequence

from .errors import InvalidInput

SERVICES = ("RCA", "Scorer")
"""What ``rca serve --service`` may start: the whole entry (scorer and narrator beside it), or the LSTM scorer
alone (its own pods; the entry then has RCA_SCORER_URL)."""


def project_root() -> Path:
    """The directory holding this distribution's top-level packages: site-packages when installed, the
    repository under an editable install (whose import hook maps only the packages known when it was made)."""
    return Path(__file__).resolve().parents[1]


def _shell_path(package: str, marker: str, extra: str) -> Path:
    path = project_root() / package / marker
    if not path.is_file():
        raise InvalidInput(f"{package}/{marker} is not installed next to openstack_rca ({project_root()}); "
                           f"reinstall: pip install --force-reinstall 'openstack-rca[{extra}]'")
    return path


def _need(module: str, extra: str, command: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise InvalidInput(f"rca {command} needs {module}: pip install 'openstack-rca[{extra}]'")


def _child_env(env: Mapping[str, str], config: str | None, home: Path) -> dict[str, str]:
    """The server's environment: this process's, with the data home and config file made absolute (BentoML
    workers may change directory), and the project root on PYTHONPATH unless it is site-packages itself: under an
    editable install ``bentos`` and ``dashboard`` are importable only from the repository."""
    out = dict(env)
    out["RCA_HOME"] = str(home.expanduser().resolve())
    if config:
        out["RCA_CONFIG"] = str(Path(config).expanduser().resolve())
    root = project_root()
    site_dirs = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    if root not in site_dirs:  # never site-packages ahead of the standard library
        out["PYTHONPATH"] = os.pathsep.join(p for p in (str(root), env.get("PYTHONPATH", "")) if p)
    return out


def _check_port(port: int) -> None:
    if not 1 <= port <= 65535:
        raise InvalidInput(f"--port must be 1..65535 (got {port})")


def serve_command(host: str, port: int, service: str, config: str | None, home: Path,
                  env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment for ``bentoml serve bentos.service:<service>``; refuses what the service would."""
    env = os.environ if env is None else env
    if service not in SERVICES:
        raise InvalidInput(f"--service must be one of {', '.join(SERVICES)} (got {service!r})")
    _check_port(port)
    _need("bentoml", "serve", "serve")
    _shell_path("bentos", "service.py", "serve")
    child = _child_env(env, config, home)
    # Secure by default, said here in one line: bentos.settings makes the same check when the module loads.
    if not child.get("RCA_API_TOKEN") and \
            child.get("RCA_ALLOW_ANONYMOUS", "").strip().lower() not in ("1", "true", "yes", "on"):
        raise InvalidInput("refusing to serve without a token: set RCA_API_TOKEN (or RCA_ALLOW_ANONYMOUS=1 to "
                           "serve without authentication on purpose)")
    argv = [sys.executable, "-m", "bentoml", "serve", f"bentos.service:{service}", "--host", host,
            "--port", str(port)]
    return argv, child


def dashboard_command(host: str, port: int, config: str | None, home: Path,
                      env: Mapping[str, str] | None = None) -> tuple[list[str], dict[str, str]]:
    """argv and environment for ``streamlit run <installed dashboard/app.py>``, headless, no usage statistics."""
    env = os.environ if env is None else env
    _check_port(port)
    _need("streamlit", "ui", "dashboard")
    app = _shell_path("dashboard", "app.py", "ui")
    argv = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true",
            "--server.address", host, "--server.port", str(port), "--browser.gatherUsageStats", "false"]
    return argv, _child_env(env, config, home)


def exec_server(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Become the server (no parent process left to forward signals or hold memory)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(argv[0], list(argv), dict(env))
