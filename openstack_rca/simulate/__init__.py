"""A realistic OpenStack log-set generator: normal multi-service traffic with one injected fault and exact truth.

Used for demos, tests, and to evaluate the anomaly model and the RCA engine: ``simulate()`` writes per-service log
files under ``out_dir`` plus ``ground_truth.json`` naming the fault, its first causal lines and its symptoms by
file and 1-based line number. Same arguments give byte-identical output.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from ..errors import InvalidInput
from .engine import simulate_events
from .events import ROOT, SYMPTOM, Event
from .faults import FAULTS, Fault
from .render import LAYOUTS, render

__all__ = ["FAULTS", "LAYOUTS", "Fault", "simulate"]

DEFAULT_START = datetime(2026, 11, 23, 9, 0, 0)
MIN_LINES = 200
MAX_ROOT_LINES = 5


def simulate(fault: str, out_dir: str | Path, *, lines: int = 5000, seed: int = 0, layout: str = "oslo",
             start: datetime | None = None) -> dict:
    """Write the log set under out_dir and out_dir/ground_truth.json; return the ground-truth dict."""
    if fault not in FAULTS:
        raise InvalidInput(f"unknown fault {fault!r}; choose one of: {', '.join(FAULTS)}")
    if layout not in LAYOUTS:
        raise InvalidInput(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if isinstance(lines, bool) or not isinstance(lines, int) or lines < MIN_LINES:
        raise InvalidInput(f"lines must be an integer >= {MIN_LINES} (got {lines!r}); a fault and the traffic "
                           "around it need at least that many")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"out_dir {str(out)!r} exists and is a file; pass a directory path (new or existing)")
    start = start or DEFAULT_START

    spec = FAULTS[fault]
    run = simulate_events(spec, seed, lines, start)
    files, where = render(run.sink.events, layout, run.world)

    out.mkdir(parents=True, exist_ok=True)
    _remove_previous(out)
    for rel, body in files.items():
        path = out / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(body) + "\n", encoding="utf-8")

    def ref(ev: Event) -> dict:
        path, line = where[ev.seq]
        return {"file": path, "line": line, "text": files[path][line - 1]}

    tagged = sorted((e for e in run.sink.events if e.role), key=lambda e: (e.t, e.seq))
    roots = [e for e in tagged if e.role == ROOT][:MAX_ROOT_LINES]
    symptoms = [e for e in tagged if e.role == SYMPTOM]
    fx = run.fx
    truth = {
        "fault": spec.name,
        "component": spec.component,
        "service": spec.service,
        "category": spec.category,
        "description": (fx.summary if fx and fx.summary else spec.description),
        "started_at": _iso(roots[0].t) if roots else None,
        "layout": layout,
        "seed": seed,
        "lines": sum(len(body) for body in files.values()),
        "root_cause": [ref(e) for e in roots],
        "symptoms": [ref(e) for e in symptoms],
        "affected": {
            "instances": list(fx.instances) if fx else [],
            "requests": list(fx.requests) if fx else [],
            "services": sorted({e.service for e in tagged}),
        },
        "files": {rel: len(body) for rel, body in files.items()},
    }
    (out / "ground_truth.json").write_text(json.dumps(truth, indent=2) + "\n", encoding="utf-8")
    return truth


def _remove_previous(out: Path) -> None:
    """Delete the files an earlier run wrote here (listed in its ground truth), so layouts never mix."""
    old = out / "ground_truth.json"
    try:
        listed = json.loads(old.read_text(encoding="utf-8")).get("files", {})
    except (OSError, ValueError, AttributeError):
        return
    root = out.resolve()
    for rel in listed if isinstance(listed, dict) else ():
        path = (out / rel).resolve()
        if root not in path.parents or not path.is_file():
            continue
        path.unlink()
        for parent in path.parents:
            if parent == root or any(parent.iterdir()):
                break
            parent.rmdir()


def _iso(t: datetime) -> str:
    return f"{t:%Y-%m-%dT%H:%M:%S}.{t.microsecond // 1000:03d}"
