"""One small analysis at start-up, so the first real request is as fast as the tenth.

A server that reports ready before its lazy parts ran makes its first caller pay for them: the embedding model's
ONNX session, the scorer's first pass, Arrow's compute kernels, the diagnosis' regexes. ``warm_up`` runs the
whole pipeline once (narration off: a warm-up must never spend Claude tokens) on a built-in incident.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

ISSUE = "instances fail to boot on compute-1"
_REQ = "req-6f1d2c3e-8a9b-4c0d-9e1f-2a3b4c5d6e7f"
_INST = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
SAMPLE = "\n".join([
    f"2026-01-01 10:00:00.101 2101 INFO nova.osapi_compute.wsgi.server [{_REQ} - - - - -] 10.0.0.5 \"POST "
    "/v2.1/servers HTTP/1.1\" status: 202 len: 801 time: 0.4123",
    f"2026-01-01 10:00:00.420 2201 INFO nova.scheduler.manager [{_REQ} - - - - -] Selected host compute-1",
    f"2026-01-01 10:00:01.002 2301 INFO nova.compute.claims [{_REQ} - - - - -] [instance: {_INST}] Claim "
    "successful on node compute-1",
    f"2026-01-01 10:00:02.310 2301 INFO nova.virt.libvirt.driver [{_REQ} - - - - -] [instance: {_INST}] "
    "Creating image",
    f"2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager [{_REQ} - - - - -] [instance: {_INST}] Instance "
    "failed to spawn: libvirtError: internal error: process exited while connecting to monitor",
    "2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager Traceback (most recent call last):",
    "2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager   File \"/usr/lib/python3/dist-packages/nova/"
    "compute/manager.py\", line 2570, in _build_resources",
    "2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager     yield resources",
    "2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager   File \"/usr/lib/python3/dist-packages/nova/"
    "virt/libvirt/guest.py\", line 165, in launch",
    "2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager     return self._domain.createWithFlags(flags)",
    "2026-01-01 10:00:03.771 2301 ERROR nova.compute.manager libvirtError: internal error: process exited "
    "while connecting to monitor",
    f"2026-01-01 10:00:04.020 2301 WARNING nova.compute.manager [{_REQ} - - - - -] [instance: {_INST}] "
    "Build of instance aborted: Instance failed to spawn",
    f"2026-01-01 10:00:04.950 2201 ERROR nova.scheduler.utils [{_REQ} - - - - -] [instance: {_INST}] Error "
    "from last host: compute-1: RescheduledException",
    f"2026-01-01 10:00:05.130 2101 INFO nova.osapi_compute.wsgi.server [{_REQ} - - - - -] 10.0.0.5 \"GET "
    f"/v2.1/servers/{_INST} HTTP/1.1\" status: 200 len: 1650 time: 0.0831",
])


def incident_text(lines: int = 3000) -> str:
    """``SAMPLE`` and a simulated libvirt failure (the project's simulator, seeded) as one log text: a warm-up of
    a realistic size and variety. A 14-line sample left the first real request paying for the allocator's and
    the parser's first large buffers (~200 ms measured over HTTP)."""
    from .simulate import simulate

    with tempfile.TemporaryDirectory(prefix="rca-warm-up-") as d:
        truth = simulate("libvirt_domain_failure", d, lines=lines, seed=0)
        return SAMPLE + "\n" + "".join((Path(d) / f).read_text() for f in truth["files"])


def warm_up(analyzer, *, mode: str = "hybrid") -> dict[str, Any]:
    """Run the pipeline once on ``incident_text()``; returns the mode it ran in, its warnings and the seconds it
    took.

    Hybrid mode that degrades (no embedding model, no Chroma) still warms the rest; the warnings say why."""
    t0 = time.perf_counter()
    if mode == "hybrid":
        from .retrieve import EmbeddingUnavailable

        try:
            analyzer.embedder().load()  # the ONNX session, even when every sample text is in the embedding cache
        except EmbeddingUnavailable:
            pass  # the analysis below degrades to fast mode and says why
    rep = analyzer.analyze(ISSUE, text=incident_text(), mode=mode, narrate=False)
    return {"mode": rep["mode"], "warnings": rep["warnings"], "seconds": round(time.perf_counter() - t0, 3),
            "records": rep["source"]["records"]}
