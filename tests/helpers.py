"""Small builders for test inputs."""

from __future__ import annotations

from pathlib import Path

import pyarrow.compute as pc

from openstack_rca.parse import ParseResult

REQ = "req-3f0a1c52-9d1e-4c7b-8f55-2b1d6f0c9e11"
GREQ = "req-7c2e9b10-55aa-4d3e-9b1f-0e8c4d2a6f33"
USER = "5b8c0f2e7d9a4c1b8e6f3a2d1c0b9e8f"
PROJ = "1f3c5e7a9b2d4f6a8c0e2b4d6f8a0c2e"
INST = "6a4d7c1e-2b3f-4a5d-8e9f-0c1b2a3d4e5f"


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return path


def assert_accounted(result: ParseResult) -> None:
    """Every input line is in exactly one record, or counted blank."""
    for f in result.files:
        if f.status in ("parsed", "cached"):
            t = result.table.filter(pc.equal(result.table["source"], f.path))
            span = sum(e - s + 1 for s, e in zip(t["line_no"].to_pylist(), t["line_end"].to_pylist()))
            assert span + f.blank == f.lines, f"{f.path}: {span} record lines + {f.blank} blank != {f.lines}"
            assert f.records == t.num_rows


def score_in_fresh_process(logs: Path, home: Path, tracking_uri: str) -> dict:
    """Load the champion model in a new interpreter with an empty RCA_HOME and score ``logs`` there:
    ``{"v": version, "src": "registry" | "local-fallback", "a": [anomaly per record]}``."""
    import json
    import os
    import subprocess
    import sys

    code = (
        "import json; from openstack_rca.config import load; from openstack_rca import registry;"
        "from openstack_rca.parse import Parser; cfg = load(); m = registry.load(cfg);"
        f"t = Parser(cfg).parse([{str(logs)!r}]).table;"
        "print(json.dumps({'v': m.version, 'src': m.source, 'a': m.bundle.score(t)['anomaly'].to_pylist()}))"
    )
    env = {**os.environ, "RCA_HOME": str(home), "RCA_MODEL_TRACKING_URI": tracking_uri}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])
