"""Start and stop a real ``bentoml serve`` for a test module (one process group, killed with its workers)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .test_service import BENTOML, ROOT, call


def descendants(pid: int) -> list[int]:
    """Every process under ``pid``: BentoML's workers run in sessions of their own, so killing the serve
    process group alone leaves them serving."""
    out, todo = [], [pid]
    while todo:
        r = subprocess.run(["ps", "-o", "pid=", "--ppid", str(todo.pop())], capture_output=True, text=True)
        kids = [int(x) for x in r.stdout.split()]
        out += kids
        todo += kids
    return out


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and everything under it at once: what a crashed container looks like."""
    for p in [pid, *descendants(pid)]:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Served:
    def __init__(self, proc: subprocess.Popen, base: str, log, env: dict):
        self.proc, self.base, self.log, self.env = proc, base, log, env

    def log_text(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(errors="replace")

    def stop(self) -> None:
        """SIGTERM (BentoML stops its workers), then SIGKILL for whatever is still there after 30 s."""
        if self.proc.poll() is None:
            workers = descendants(self.proc.pid)
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=30)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                kill_tree(self.proc.pid)
                self.proc.wait(timeout=30)
            for p in workers:  # orphans of a serve process that did not stop them (still our workers?)
                try:
                    with open(f"/proc/{p}/cmdline", "rb") as f:
                        if b"_bentoml_impl" in f.read():
                            os.kill(p, signal.SIGKILL)
                except (OSError, ProcessLookupError):
                    pass
        self.log.close()


def serve(target: list[str], port: int, env: dict, log_path: Path, *, host: str = "127.0.0.1",
          wait_for: str = "/readyz", timeout: float = 240) -> Served:
    """``bentoml serve [target] --host host --port port`` from the repository root; returns once ``wait_for``
    answers 200 (fails the test with the log's tail if it never does)."""
    if not BENTOML.exists():
        pytest.skip("bentoml is not installed (pip install 'openstack-rca[serve]')")
    log = open(log_path, "w+")
    proc = subprocess.Popen([str(BENTOML), "serve", *target, "--host", host, "--port", str(port)], cwd=ROOT,
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    served = Served(proc, f"http://127.0.0.1:{port}", log, env)
    deadline = time.time() + timeout
    while True:
        try:
            if call(served.base, wait_for, token=None, timeout=2)[0] == 200:
                return served
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            text = served.log_text()
            served.stop()
            pytest.fail(f"bentoml serve {' '.join(target)} did not answer {wait_for}:\n{text[-4000:]}")
        time.sleep(0.5)
