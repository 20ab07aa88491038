"""The Open Inference Protocol v2 model behind both transports (gRPC in ``server``, REST in ``rest``).

What the model takes and gives is decided here once, so the two protocols cannot drift: the model's name and
version, its tensor metadata, the checks on the ``lines`` input (datatype, shape, element count, the line
limit), which outputs to return and how each is typed, and the response parameters. The transports only move
bytes: protobuf fields or raw contents for gRPC, JSON or Triton's binary tensor extension for REST.

A refused request raises ``Rejected`` with a ``kind`` each transport maps to its own status (``STATUS``).
Nothing here imports grpc or starlette.
"""

from __future__ import annotations

import logging
import struct
from typing import Any, Callable, Iterable

import numpy as np

log = logging.getLogger(__name__)

MODEL_NAME = "openstack-rca-lstm"
SERVER_NAME = "openstack-rca"
PLATFORM = "tensorflow"
INPUT_NAME = "lines"
# name -> (OIP datatype, record key); the order is the response order when the request names no outputs
OUTPUTS: dict[str, tuple[str, str]] = {
    "line_no": ("INT32", "line_no"),
    "template_id": ("BYTES", "template_id"),
    "anomaly": ("FP32", "anomaly"),
    "importance": ("FP32", "importance"),
    "anomalous": ("BOOL", "anomalous"),
}
LINE_COUNTS = ("total", "blank", "continuation", "unparsed", "truncated")
NUMPY_TYPES = {"INT32": "<i4", "FP32": "<f4", "BOOL": np.bool_}

ScoreFn = Callable[[list[str]], dict]

INVALID, NOT_FOUND, TOO_LARGE, UNAVAILABLE = "invalid", "not_found", "too_large", "unavailable"
STATUS = {INVALID: 400, NOT_FOUND: 404, TOO_LARGE: 413, UNAVAILABLE: 503}
"""HTTP status per kind (gRPC: INVALID_ARGUMENT, NOT_FOUND, RESOURCE_EXHAUSTED, UNAVAILABLE)."""


class Rejected(Exception):
    """A request the model refuses; ``kind`` is one of INVALID, NOT_FOUND, TOO_LARGE, UNAVAILABLE."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind, self.message = kind, message


# -- raw BYTES (gRPC raw_input_contents, REST binary tensor data) ----------------------------------------------
def encode_raw_bytes(items: Iterable[bytes]) -> bytes:
    """OIP raw BYTES: each element as a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(b)) + b for b in items)


def decode_raw_bytes(raw: bytes, count: int) -> list[bytes]:
    """The inverse of ``encode_raw_bytes``; raises ``ValueError`` when ``raw`` does not hold ``count`` elements."""
    out, pos, end = [], 0, len(raw)
    view = memoryview(raw)
    while pos < end:
        if pos + 4 > end:
            raise ValueError(f"element {len(out)} has a truncated length prefix")
        (n,) = struct.unpack_from("<I", raw, pos)
        pos += 4
        if pos + n > end:
            raise ValueError(f"element {len(out)} declares {n} bytes but only {end - pos} remain")
        out.append(bytes(view[pos:pos + n]))
        pos += n
        if len(out) > count:
            break
    if len(out) != count:
        raise ValueError(f"shape says {count} elements, raw_input_contents holds {len(out)}"
                         + (" or more" if pos < end else ""))
    return out


def raw_output(datatype: str, values: list) -> bytes:
    """Output values in the raw form (BYTES length-prefixed, numbers little-endian)."""
    if datatype == "BYTES":
        return encode_raw_bytes(values)
    return np.asarray(values, dtype=NUMPY_TYPES[datatype]).tobytes()


# -- the input ------------------------------------------------------------------------------------------------
def check_inputs(names: list[str], model_name: str) -> None:
    """Exactly one input, ``lines``."""
    if INPUT_NAME not in names:
        raise Rejected(INVALID, f"missing input {INPUT_NAME!r} (BYTES, shape [-1], one element per log line)"
                       + (f"; got {names}" if names else ""))
    if len(names) != 1:
        raise Rejected(INVALID, f"model {model_name!r} takes exactly one input, {INPUT_NAME!r}; got {names}")


def check_header(datatype: str, shape: list, max_lines: int) -> int:
    """The element count the ``lines`` tensor declares, once its datatype, shape and size are acceptable."""
    if datatype != "BYTES":
        raise Rejected(INVALID, f"input {INPUT_NAME!r} must have datatype BYTES, got {datatype or 'none'!r}")
    if len(shape) != 1 or not isinstance(shape[0], int) or isinstance(shape[0], bool) or shape[0] < 0:
        raise Rejected(INVALID, f"input {INPUT_NAME!r} must have shape [n] (one element per log line), got {shape}")
    n = shape[0]
    if n > max_lines:
        raise Rejected(TOO_LARGE, f"request has {n} lines; the limit is {max_lines} lines per request")
    return n


def check_count(n: int, got: int, where: str) -> None:
    if got != n:
        raise Rejected(INVALID, f"input {INPUT_NAME!r}: shape says {n} elements, {where} holds {got}")


def decode_raw_input(raw: bytes, n: int) -> list[bytes]:
    try:
        return decode_raw_bytes(raw, n)
    except ValueError as exc:
        raise Rejected(INVALID, f"input {INPUT_NAME!r}: bad raw BYTES encoding: {exc}") from None


def to_lines(items: list[bytes | str], max_lines: int) -> list[str]:
    """Elements as text (invalid UTF-8 replaced), under the line limit counted as the parser will see them:
    an element holding newlines is several lines once the document is joined."""
    lines = [b.decode("utf-8", errors="replace") if isinstance(b, bytes) else b for b in items]
    total = sum(s.count("\n") for s in lines) + len(lines)
    if total > max_lines:
        raise Rejected(TOO_LARGE, f"request has {total} lines (elements hold newlines); "
                                  f"the limit is {max_lines} lines per request")
    return lines


# -- the outputs ----------------------------------------------------------------------------------------------
def select_outputs(wanted: list[str]) -> list[str]:
    unknown = [n for n in wanted if n not in OUTPUTS]
    if unknown:
        raise Rejected(INVALID, f"unknown output(s) {unknown}; this model has {list(OUTPUTS)}")
    return list(dict.fromkeys(wanted)) or list(OUTPUTS)


def output_values(records: list[dict[str, Any]], name: str) -> tuple[str, list]:
    """(datatype, values) of one output: BYTES as UTF-8 bytes, INT32 int, FP32 float, BOOL bool."""
    datatype, key = OUTPUTS[name]
    values = [r[key] for r in records]
    if datatype == "BYTES":
        return datatype, [str(v).encode("utf-8") for v in values]
    cast = {"INT32": int, "FP32": float, "BOOL": bool}[datatype]
    return datatype, [cast(v) for v in values]


def response_parameters(result: dict) -> dict[str, int]:
    """The line accounting of one scored request (``lines_*`` and ``records``)."""
    counts: dict[str, int] = result.get("lines") or {}
    params = {f"lines_{k}": int(counts[k]) for k in LINE_COUNTS if k in counts}
    params["records"] = len(result["records"])
    return params


# -- the model ------------------------------------------------------------------------------------------------
class OIPModel:
    """One ``score_fn`` as the OIP model ``model_name``.

    ``score_fn(lines)`` gets one request's log lines and returns ``{"records": [...], "lines": {...}}`` (the shape
    of one ``Analyzer.score_documents`` entry). ``model_version_fn`` names the version being served (asked on
    each call, so a reloaded model shows); ``ready_fn`` says whether inference can run now.
    """

    def __init__(self, score_fn: ScoreFn, model_name: str = MODEL_NAME, *,
                 model_version_fn: Callable[[], str] = lambda: "1", ready_fn: Callable[[], bool] = lambda: True,
                 max_lines: int = 10_000, server_version: str | None = None):
        if max_lines < 1:
            raise ValueError("max_lines must be at least 1")
        self.score_fn = score_fn
        self.model_name = model_name
        self.model_version_fn = model_version_fn
        self.ready_fn = ready_fn
        self.max_lines = max_lines
        if server_version is None:
            from openstack_rca import __version__ as server_version
        self.server_version = server_version

    def is_ready(self) -> bool:
        try:
            return bool(self.ready_fn())
        except Exception:  # a failing readiness probe means "not ready", not a crash
            log.warning("ready_fn raised; reporting not ready", exc_info=True)
            return False

    def version(self) -> str:
        try:
            return str(self.model_version_fn() or "")
        except Exception:
            log.warning("model_version_fn raised; reporting no version", exc_info=True)
            return ""

    def check_model(self, name: str, version: str = "") -> str:
        """The served version, or ``Rejected(NOT_FOUND)`` for another model or version."""
        if name != self.model_name:
            raise Rejected(NOT_FOUND, f"unknown model {name!r}: this server serves {self.model_name!r}")
        current = self.version()
        if version and version != current:
            raise Rejected(NOT_FOUND, f"model {name!r} has no version {version!r} (serving {current or 'none'!r})")
        return current

    def check_ready(self) -> None:
        if not self.is_ready():
            raise Rejected(UNAVAILABLE, f"model {self.model_name!r} is not ready; retry later")

    def server_metadata(self) -> dict:
        return {"name": SERVER_NAME, "version": self.server_version, "extensions": []}

    def model_metadata(self, version: str) -> dict:
        """KServe's ModelMetadataResponse as a dict (the REST body; the gRPC message is built from it)."""
        return {"name": self.model_name, "versions": [version] if version else [], "platform": PLATFORM,
                "inputs": [{"name": INPUT_NAME, "datatype": "BYTES", "shape": [-1]}],
                "outputs": [{"name": n, "datatype": dt, "shape": [-1]} for n, (dt, _) in OUTPUTS.items()]}

    def score(self, lines: list[str]) -> dict:
        return self.score_fn(lines)
