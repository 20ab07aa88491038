"""What a registered model carries so it runs outside this project: its code, its pinned requirements, an input
example and the signature MLflow reads from the pyfunc's type hints.

Why code_paths: the pickled pyfunc imports ``openstack_rca``; without the package beside it the model loads only
in this project's venv. Only the modules scoring needs travel (the parser and the scorer, pure Python: the C
speedups stay home, the parser falls back to the same results), so a clean virtualenv with the model's own
``requirements.txt`` serves it, without TensorFlow (scoring runs the LSTM in numpy from ``lstm.npz``).
"""

from __future__ import annotations

import shutil
from importlib.metadata import version
from pathlib import Path

import pyarrow as pa

PACKAGE = Path(__file__).resolve().parents[1] / "openstack_rca"
CODE = ("__init__.py", "config.py", "errors.py", "parse", "score")
"""The ``openstack_rca`` modules the pyfunc imports (the clean-venv test fails when one goes missing)."""
SERVING_DISTRIBUTIONS = ("mlflow-skinny", "numpy", "pandas", "pyarrow", "pydantic", "scikit-learn")
"""mlflow-skinny serves (FastAPI + uvicorn) without the tracking server's dependencies; scikit-learn reads the
bundle's TF-IDF scorer. Pinned to the versions that trained the model, as MLflow pins itself."""
EXAMPLE_LINES = 5


def pip_requirements() -> list[str]:
    return [f"{name}=={version(name)}" for name in SERVING_DISTRIBUTIONS]


def stage_code(tmp: Path) -> Path:
    """A copy of the needed modules at ``tmp/openstack_rca`` (no caches, no compiled extensions)."""
    dest = Path(tmp) / "openstack_rca"
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "*.c", "*.pyc")
    for name in CODE:
        src = PACKAGE / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def input_example(table: pa.Table, lines: int = EXAMPLE_LINES) -> list[dict]:
    """The first lines of the first training file, as the pyfunc takes them (``source`` keeps the file's last two
    path parts: enough to name the service, no training host's directory layout)."""
    if table.num_rows == 0:
        return []
    first = table["source"][0].as_py()
    member = first.split("!/")[-1]
    source = "/".join(Path(member).parts[-2:])
    out: list[dict] = []
    for raw, src in zip(table["raw"].to_pylist(), table["source"].to_pylist()):
        if src != first:
            continue
        for line in (raw or "").split("\n"):
            out.append({"line": line, "source": source})
        if len(out) >= lines:
            break
    return out[:lines]
