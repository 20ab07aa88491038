"""Once per machine and model: export to ONNX, check against sentence-transformers, record the verdict.

This is the only place the ONNX backend touches torch and sentence-transformers. The check runs the exact lean path
later processes use (``tokenizers`` + ONNX Runtime) on probes that exercise truncation and padding, and accepts it
when no component differs from sentence-transformers by more than 1e-4. The verdict is written next to the ONNX
file (``<model>-<digest>.verified.json``, with the library versions it holds for); a "torch" verdict (a model that
is not transformer + mean pooling + normalize, or an export that does not match) sends later processes straight to
sentence-transformers without trying again, until those versions change. A failed export leaves no verdict.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .embeddings import run_lean, session, tokenizer, write_atomic

if TYPE_CHECKING:
    from .embeddings import Embedder

log = logging.getLogger(__name__)
TOLERANCE = 1e-4
PROBES = [
    "instances fail to boot since 14:00",
    "AMQP server on 10.0.0.5:5672 is unreachable",
    "  Instance failed to spawn  ",
    "Ünïcode, CJK 中文 and emoji \u2705 in a log line",
    # longer than max_seq_length tokens: truncation must cut where sentence-transformers cuts
    " ".join(f"frame{i} in nova/compute/manager.py line {i}" for i in range(120)),
    "x",
]


def versions() -> dict[str, str | None]:
    """What the verdict holds for; the lean path compares the first two with the modules it imports."""
    import onnxruntime
    import tokenizers

    out: dict[str, str | None] = {"onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__}
    for lib in ("sentence-transformers", "transformers", "torch"):
        try:
            out[lib] = metadata.version(lib)
        except metadata.PackageNotFoundError:
            out[lib] = None
    return out


def export_and_verify(emb: "Embedder"):
    """The lean backend (session, tokenizer, lower-case) when it matches sentence-transformers, else None."""
    try:
        found = versions()
    except ImportError:
        log.info("onnxruntime or tokenizers is not installed; %s runs on sentence-transformers", emb.name)
        return None
    old = emb.marker()
    if old and old.get("backend") == "torch" and old.get("versions") == found:
        return None  # already found unsuitable with these libraries
    model = emb.model
    verdict: dict[str, Any] = {"digest": emb.digest, "model": emb.name, "versions": found}
    lean = None
    reason = _unsupported(model)
    if reason is None:
        try:
            spec = {"max_seq_length": int(model.max_seq_length), "pad_id": int(model.tokenizer.pad_token_id),
                    "pad_token": str(model.tokenizer.pad_token),
                    "do_lower_case": bool(getattr(model[0], "do_lower_case", False))}
            try:  # an earlier process's export, not yet checked (it may have died before writing its verdict)
                sess = session(emb.onnx_path)
            except Exception:  # noqa: BLE001 - none yet, or a damaged one
                _export(model, emb.onnx_path)
                sess = session(emb.onnx_path)
            candidate = (sess, tokenizer(emb.path, spec), spec["do_lower_case"])
            got = run_lean(candidate, PROBES, emb.batch_size)
            ref = model.encode(PROBES, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False)
            diff = float(np.abs(got - ref).max())
            verdict.update(max_diff=diff, dim=int(ref.shape[1]), tokenizer=spec, onnx=emb.onnx_path.name)
            if diff <= TOLERANCE:
                lean = candidate
            else:
                reason = f"ONNX differs from sentence-transformers by {diff:.2g}"
        except Exception as exc:  # noqa: BLE001 - any export/runtime problem: the torch path still works
            # perhaps passing (a full disk): no verdict, so the next process tries again
            log.warning("ONNX export of %s failed (%s: %s); using sentence-transformers", emb.name,
                        type(exc).__name__, exc)
            return None
    if lean is None:
        log.warning("ONNX backend unavailable for %s (%s); using sentence-transformers", emb.name, reason)
        verdict.update(backend="torch", reason=str(reason)[:500])
    else:
        verdict["backend"] = "onnx"
    try:
        write_atomic(emb.marker_path, json.dumps(verdict, indent=1).encode())
    except OSError as exc:
        log.warning("cannot record the embedding check in %s (%s); it runs again next time", emb.marker_path, exc)
    return lean


def _unsupported(model) -> str | None:
    modules = [type(m).__name__ for m in model]
    pooling = model[1].get_config_dict() if len(model) > 1 and hasattr(model[1], "get_config_dict") else {}
    mean = pooling.get("pooling_mode") == "mean" or pooling.get("pooling_mode_mean_tokens") is True
    if modules != ["Transformer", "Pooling", "Normalize"] or not mean:
        return f"modules {modules} are not transformer + mean pooling + normalize"
    if not hasattr(model[0], "auto_model"):
        return "the transformer module has no auto_model to export"
    return None


def _export(model, path: Path) -> None:
    import torch

    bert = model[0].auto_model.eval()

    class Encoder(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            h = self.inner(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            e = (h * m).sum(1) / m.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(e, p=2, dim=1)

    enc = model.tokenizer(["export probe"], return_tensors="pt")
    tmp = path.with_name(f"{path.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")
            torch.onnx.export(Encoder(bert), (enc["input_ids"], enc["attention_mask"]), str(tmp),
                              input_names=["input_ids", "attention_mask"], output_names=["embedding"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "embedding": {0: "batch"}},
                              opset_version=17, dynamo=False)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
