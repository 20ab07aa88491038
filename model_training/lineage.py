"""Which logs a model learned from, as an MLflow dataset on its training run.

MLflow computes a dataset's digest from a sample of its rows; here the digest is a hash of every input file's
path and content (sha256), so two runs on the same logs share a digest and a changed file changes it. The rows
are the parsed records (source, line, service, template, session, train/held-out split): the schema and profile
MLflow shows, not a copy of the logs (``log_input`` stores metadata only).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa

from openstack_rca.parse import FileReport

DATASET_NAME = "openstack-logs"
COLUMNS = ("source", "line_no", "timestamp", "service", "level", "template_id")


def file_digests(files: Iterable[FileReport]) -> list[dict]:
    out = []
    for f in files:
        h = hashlib.sha256()
        if os.path.isfile(f.path):
            with open(f.path, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
        out.append({"path": f.path, "sha256": h.hexdigest(), "bytes": f.bytes, "lines": f.lines,
                    "records": f.records})
    return sorted(out, key=lambda d: d["path"])


def digest(files: list[dict]) -> str:
    text = "\n".join(f"{f['path']}\t{f['sha256']}" for f in files)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def source_of(paths: Iterable) -> str:
    """The ``--logs`` path, or the folder the ``--logs`` paths share."""
    resolved = [str(Path(p).resolve()) for p in paths]
    return resolved[0] if len(resolved) == 1 else os.path.commonpath(resolved)


def log_training_data(mlflow, table: pa.Table, session_keys: np.ndarray, held_out: np.ndarray,
                      files: list[dict], paths: Iterable) -> str:
    """Log the dataset (context ``training``) and the file list as ``training_files.json``; returns the digest."""
    frame = table.select(list(COLUMNS)).to_pandas()
    frame["session"] = session_keys
    frame["split"] = np.where(held_out, "held_out", "train")
    dig = digest(files)
    dataset = mlflow.data.from_pandas(frame, source=source_of(paths), name=DATASET_NAME, digest=dig)
    mlflow.log_input(dataset, context="training", tags={"files": str(len(files))})
    mlflow.log_text(json.dumps(files, indent=1), "training_files.json")
    return dig
