"""One cold process, timed the way a user's shell would: wall seconds and peak RSS.

GNU time (``/usr/bin/time -f '%e %M'``) measures the command itself. ``os.wait4`` on a child of the benchmark
would not: Linux carries the parent's RSS high-water mark into a forked child across exec, so every command run
by a benchmark that has loaded a model would report the benchmark's own memory.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

TIME = "/usr/bin/time"


def timed(cmd: list[str], env: dict[str, str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS MB) of one process; a failing command stops the benchmark with its stderr."""
    if not Path(TIME).exists():
        raise SystemExit("GNU time is needed to measure whole processes (apt-get install time)")
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        r = subprocess.run([TIME, "-f", "%e %M", "-o", tf.name, *cmd], env=env, cwd=cwd,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, errors="replace")
        if r.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} exited {r.returncode}:\n{r.stderr[-2000:]}")
        wall, rss = tf.read().split()[-2:]
    return float(wall), int(rss) / 1024
