"""The project as a user installs it: a wheel built from this tree, `pip install`ed with the serve, ml and ui
extras into a clean virtualenv, and run from a directory outside the repository: `rca`, `rca serve` on a model the
project venv trained, `rca dashboard`. Then the Bento: `bentoml build`, and the setup script its Dockerfile runs,
which gives the image the `rca` command the retrain CronJob calls.

Slow (a clean install is 1-2 minutes here): `pytest -m slow tests/test_wheel.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from .test_service import BENTOML, ROOT, TOKEN, _free_port, call

pytestmark = pytest.mark.slow

PACKAGES = ("openstack_rca", "model_training", "retrieval_service", "bentos", "dashboard")
DATA_FILES = ("bentos/oip/grpc_predict_v2.proto", "bentos/oip/grpc_predict_v2_pb2.pyi",
              "dashboard/.streamlit/config.toml")
HEAVY = ("torch", "tensorflow", "tensorflow-cpu", "keras", "sentence-transformers", "chromadb", "transformers")
INSTALL_TIMEOUT_S = 600


def _outside_env() -> dict[str, str]:
    """This process's environment without what would point a child at the project venv or the repository."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("RCA_", "PYTHON", "VIRTUAL_ENV", "MLFLOW_", "BENTOML_", "ANTHROPIC_"))}


def _run(cmd, *, timeout: float = 120, check: bool = True, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{(r.stdout + r.stderr)[-4000:]}")
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this tree, built from a copy of what the wheel needs (no stale build/ of the checkout)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "build", "*.egg-info")
    for name in PACKAGES:
        shutil.copytree(ROOT / name, src / name, ignore=skip)
    for name in ("pyproject.toml", "setup.py", "README.md", "MANIFEST.in"):
        shutil.copy2(ROOT / name, src / name)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
          "-w", str(tmp / "dist")], timeout=300)
    (whl,) = (tmp / "dist").glob("openstack_rca-*.whl")
    return whl


def test_wheel_carries_every_module_and_data_file(wheel):
    """Every module of the five packages in the repository (and the files they read) is in the wheel."""
    names = set(zipfile.ZipFile(wheel).namelist())
    want = {p.relative_to(ROOT).as_posix() for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if "__pycache__" not in p.parts}
    missing = sorted(want - names) + [f for f in DATA_FILES if f not in names]
    assert not missing, f"the wheel lacks {missing}: fix [tool.setuptools.packages.find]/package-data in pyproject.toml"
    entry = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "rca = openstack_rca.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()
    assert not any(n.startswith("tests/") for n in names)


@pytest.fixture(scope="module")
def venv(wheel, tmp_path_factory) -> dict:
    """A clean virtualenv (no system or project site-packages) with the wheel and its serve, ml, ui extras."""
    missing = [f for f in DATA_FILES + tuple(f"{p}/__init__.py" for p in PACKAGES)
               if f not in zipfile.ZipFile(wheel).namelist()]
    if missing:  # the install and servers below would only fail later and slower
        pytest.fail(f"the wheel lacks {missing}; see test_wheel_carries_every_module_and_data_file")
    d = tmp_path_factory.mktemp("clean-venv") / "venv"
    base = getattr(sys, "_base_executable", sys.executable)
    _run([base, "-m", "venv", str(d)], timeout=120)
    t0 = time.monotonic()
    _run([str(d / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
          f"{wheel}[serve,ml,ui]"], timeout=INSTALL_TIMEOUT_S)
    install_s = time.monotonic() - t0
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    (out / "wheel-install.json").write_text(json.dumps({"wheel": wheel.name, "extras": "serve,ml,ui",
                                                        "install_s": round(install_s, 1)}) + "\n")
    work = tmp_path_factory.mktemp("outside-the-repo")
    env = _outside_env()
    env.update(PATH=f"{d / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}", VIRTUAL_ENV=str(d),
               RCA_HOME=str(work / "home"), HF_HUB_OFFLINE="1", BENTOML_DO_NOT_TRACK="True",
               BENTOML_HOME=str(work / "bentoml"))
    return {"dir": d, "bin": d / "bin", "env": env, "cwd": work, "install_s": install_s}


def test_clean_install_has_no_heavy_stacks_and_imports_from_itself(venv):
    pkgs = {p["name"].lower() for p in json.loads(_run([str(venv["bin"] / "python"), "-m", "pip", "list",
                                                        "--format", "json"], env=venv["env"]).stdout)}
    assert not pkgs & set(HEAVY), f"serve/ml/ui pulled {sorted(pkgs & set(HEAVY))}"
    assert {"bentoml", "mlflow", "streamlit", "openstack-rca"} <= pkgs
    code = "import bentos.service, dashboard.backend, model_training, retrieval_service, openstack_rca; " \
           "import json; print(json.dumps([m.__file__ for m in (bentos, dashboard, openstack_rca)]))"
    env = {**venv["env"], "RCA_ALLOW_ANONYMOUS": "1"}  # bentos.service checks for a token at import
    files = json.loads(_run([str(venv["bin"] / "python"), "-c", code], env=env, cwd=venv["cwd"]).stdout)
    site = str(venv["dir"] / "lib")
    assert all(f.startswith(site) for f in files), files


def test_cli_from_outside_the_repository(venv):
    rca, env, cwd = str(venv["bin"] / "rca"), venv["env"], venv["cwd"]
    assert _run([rca, "--version"], env=env, cwd=cwd).stdout.strip() == "openstack-rca 0.1.0"
    truth = json.loads(_run([rca, "simulate", "--fault", "libvirt_domain_failure", "--out", "logs", "--lines",
                             "1500", "--seed", "3", "--json"], env=env, cwd=cwd).stdout)
    assert truth["lines"] == 1500
    out = _run([rca, "parse", "logs", "--json"], env=env, cwd=cwd).stdout.splitlines()
    records = [json.loads(line) for line in out]
    assert len(records) > 1000 and all("template_id" in r for r in records[:50])
    assert any(r["service"] == "nova-compute" for r in records)
    # secure by default before any server starts: one line, exit 2
    r = _run([rca, "serve"], env=env, cwd=cwd, check=False, timeout=60)
    assert r.returncode == 2 and "RCA_API_TOKEN" in r.stderr and len(r.stderr.strip().splitlines()) == 1


# BentoML restarts a worker whose start-up failed, so the server lives on without ever being ready: these lines in
# its log end the wait at once (a module missing from the wheel, a service that cannot be built).
FATAL = ("Application startup failed", "Failed to import module", "ModuleNotFoundError", "cannot import name")


def _start(cmd, env, cwd, log_path: Path, ready, what: str, deadline_s: float = 240) -> subprocess.Popen:
    """Start a server in its own process group; wait until ``ready()`` or fail with its log (never hang)."""
    log = open(log_path, "w+")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            if ready():
                return proc
        except OSError:
            pass
        fatal = any(m in log_path.read_text(errors="replace") for m in FATAL)
        if fatal or proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            log.seek(0)
            pytest.fail(f"{what} did not become ready (exit {proc.returncode}):\n{log.read()[-5000:]}")
        time.sleep(1)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_rca_serve_answers_on_the_project_trained_model(venv, trained, tmp_path):
    """`rca serve` from the clean venv, on the registry the project venv trained (fast mode: no embeddings)."""
    from openstack_rca import simulate

    cfg, _ = trained
    port, grpc_port = _free_port(), _free_port()
    env = {**venv["env"], "RCA_HOME": str(cfg.home), "RCA_API_TOKEN": TOKEN, "RCA_ANALYZE_MODE": "fast",
           "RCA_GRPC_PORT": str(grpc_port), "BENTOML_HOME": str(tmp_path / "bentoml")}
    base = f"http://127.0.0.1:{port}"
    proc = _start([str(venv["bin"] / "rca"), "serve", "--host", "127.0.0.1", "--port", str(port)], env,
                  venv["cwd"], tmp_path / "serve.log",
                  lambda: call(base, "/readyz", token=None, timeout=2)[0] == 200, "rca serve")
    try:
        truth = simulate.simulate("libvirt_domain_failure", tmp_path / "incident", lines=2000, seed=3)
        text = "".join((tmp_path / "incident" / f).read_text() for f in truth["files"])
        status, rep = call(base, "/analyze", {"issue": "instances fail to boot", "logs": text, "mode": "fast",
                                              "narrate": False}, timeout=120)
        assert status == 200, rep
        assert rep["mode"] == "fast" and rep["root_cause"]["category"] == truth["category"]
        assert call(base, "/analyze", {"issue": "x", "logs": text}, token=None)[0] == 401
    finally:
        _stop(proc)


def test_rca_dashboard_starts_headless(venv, tmp_path):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    proc = _start([str(venv["bin"] / "rca"), "dashboard", "--port", str(port)], venv["env"], venv["cwd"],
                  tmp_path / "dashboard.log",
                  lambda: call(base, "/_stcore/health", token=None, timeout=2) == (200, "ok"),
                  "rca dashboard", deadline_s=120)
    try:
        status, page = call(base, "/", token=None)
        assert status == 200 and "<html" in page.lower()
    finally:
        _stop(proc)


def test_bento_image_gets_rca(tmp_path):
    """`bentoml build` (the project venv), then the Bento's setup script as its Dockerfile runs it, in a venv that
    has nothing of the project. Then, from elsewhere, `rca` and the packages come from the Bento's src/ (what
    `bentoml serve` imports in the image). The requirements are bentoml build's (tests/test_service.py)."""
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed in the project venv")
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "HF_HUB_OFFLINE": "1",
           "BENTOML_DO_NOT_TRACK": "True"}
    _run([str(BENTOML), "build", "--output", "tag"], cwd=ROOT, env=env, timeout=300)
    (bento,) = [p for p in (tmp_path / "bentoml" / "bentos" / "openstack-rca").iterdir() if p.name != "latest"]
    dockerfile = (bento / "env" / "docker" / "Dockerfile").read_text()
    (script,) = (bento / "env" / "docker").glob("script__*")
    assert script.read_text() == (ROOT / "bentos" / "install_project.sh").read_text()
    assert f"./env/docker/{script.name}" in dockerfile  # run as root before `COPY . ./`: src/ is not there yet
    image_venv = tmp_path / "image-venv"
    _run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(image_venv)])
    image_env = {**_outside_env(), "RCA_HOME": str(tmp_path / "home"),
                 "PATH": f"{image_venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
                 "VIRTUAL_ENV": str(image_venv)}
    _run(["bash", str(script)], env={**image_env, "BENTO_PATH": str(bento)}, cwd=bento)
    rca = str(image_venv / "bin" / "rca")
    assert _run([rca, "--version"], env=image_env, cwd=tmp_path).stdout.strip() == "openstack-rca 0.1.0"
    assert "--logs" in _run([rca, "train", "--help"], env=image_env, cwd=tmp_path).stdout
    code = "import bentos, model_training, openstack_rca; print(openstack_rca.__file__, bentos.__file__)"
    files = _run([str(image_venv / "bin" / "python"), "-c", code], env=image_env, cwd=tmp_path).stdout.split()
    assert all(f.startswith(str(bento / "src")) for f in files), files
    # the training image (the CronJob's) runs the same script
    _run([str(BENTOML), "build", "-f", "bentofile.train.yaml", "--output", "tag"], cwd=ROOT, env=env, timeout=300)
    (train,) = [p for p in (tmp_path / "bentoml" / "bentos" / "openstack-rca-train").iterdir() if p.name != "latest"]
    (train_script,) = (train / "env" / "docker").glob("script__*")
    assert train_script.read_text() == script.read_text()
    assert f"./env/docker/{train_script.name}" in (train / "env" / "docker" / "Dockerfile").read_text()
