"""The production path for real: an `mlflow server` (sqlite backend) whose artifacts live in S3, served by a
`moto_server` on loopback. Training registers there; the artifacts are objects in the bucket; the alias resolves;
a fresh process loads the model from the server and scores identically; with the server gone, the loader falls
back to its local copy."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mlflow")
pytest.importorskip("keras")
boto3 = pytest.importorskip("boto3")
if shutil.which("moto_server", path=str(Path(sys.executable).parent)) is None:
    pytest.skip("moto_server not installed (dev extra)", allow_module_level=True)

from model_training.pipeline import train  # noqa: E402
from openstack_rca import registry, simulate  # noqa: E402
from openstack_rca.alias import alias_version  # noqa: E402
from openstack_rca.parse import Parser  # noqa: E402
from openstack_rca.score.deeplog import DeepLogConfig  # noqa: E402

from .helpers import score_in_fresh_process  # noqa: E402

pytestmark = pytest.mark.slow
BUCKET = "rca-models"
CREDS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
HP = DeepLogConfig(window=5, embed_dim=8, hidden=16, layers=1, epochs=2, batch_size=256)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(port: int, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise TimeoutError(f"{what} did not listen on {port} within {timeout}s")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mlflow-server")
    bindir = Path(sys.executable).parent
    s3_port, ml_port = free_port(), free_port()
    env = {**os.environ, **CREDS, "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{s3_port}"}
    moto = subprocess.Popen([str(bindir / "moto_server"), "-H", "127.0.0.1", "-p", str(s3_port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [moto]
    try:
        wait_http(s3_port, moto, "moto_server")
        s3 = boto3.client("s3", endpoint_url=env["MLFLOW_S3_ENDPOINT_URL"], **{
            "aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"})
        s3.create_bucket(Bucket=BUCKET)
        ml = subprocess.Popen(
            [str(bindir / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(ml_port), "--workers", "1",
             "--backend-store-uri", f"sqlite:///{tmp / 'mlflow.db'}",
             "--artifacts-destination", f"s3://{BUCKET}/mlflow"],
            env=env, stdout=open(tmp / "mlflow.log", "w"), stderr=subprocess.STDOUT,
        )
        procs.append(ml)
        wait_http(ml_port, ml, "mlflow server", timeout=120)
        yield {"uri": f"http://127.0.0.1:{ml_port}", "s3": s3, "env": env, "mlflow": ml}
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()


def test_train_on_server_with_s3_artifacts_then_load_fresh_and_fall_back(servers, cfg, tmp_path, monkeypatch):
    for k, v in {**CREDS, "MLFLOW_S3_ENDPOINT_URL": servers["env"]["MLFLOW_S3_ENDPOINT_URL"]}.items():
        monkeypatch.setenv(k, v)
    simulate.simulate("none", tmp_path / "normal", lines=1200, seed=3)
    on_server = cfg.replace(model=replace(cfg.model, tracking_uri=servers["uri"]))
    result = train([tmp_path / "normal"], on_server, HP)
    assert result["version"] == "1"

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=servers["uri"])
    assert client.get_run(result["run_id"]).data.metrics["loss"] > 0
    assert client.get_model_version_by_alias("openstack-rca-lstm", "champion").version == "1"
    keys = [o["Key"] for o in servers["s3"].list_objects_v2(Bucket=BUCKET).get("Contents", [])]
    assert any(k.endswith("bundle/lstm.keras") for k in keys), keys[:10]
    assert any(k.endswith("bundle/lstm.npz") for k in keys), keys[:10]  # the weights scoring reads, beside it
    assert alias_version(servers["uri"], "openstack-rca-lstm", "champion") == "1"  # REST, without the client
    assert any(k.endswith("MLmodel") for k in keys)

    # a fresh process with an empty RCA_HOME loads it from the server (and so from S3)
    simulate.simulate("compute_disk_full", tmp_path / "fault", lines=600, seed=4)
    here = registry.load(on_server)
    table = Parser(on_server).parse([tmp_path / "fault"]).table
    mine = here.bundle.score(table)["anomaly"].to_numpy()
    other = score_in_fresh_process(tmp_path / "fault", tmp_path / "fresh", servers["uri"])
    assert (other["v"], other["src"]) == ("1", "registry")
    np.testing.assert_allclose(other["a"], mine, rtol=1e-5, atol=1e-6)

    # the server goes away: the loader keeps working from its local copy
    servers["mlflow"].terminate()
    servers["mlflow"].wait(timeout=30)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    fallback = registry.load(on_server)
    assert (fallback.source, fallback.version) == ("local-fallback", "1")
