"""The MLflow pyfunc face of a trained bundle: raw log lines in, one score per line out.

``mlflow.pyfunc.load_model("models:/openstack-rca-lstm@champion")`` (or ``mlflow models serve``) takes
``[{"line": "...", "source": "nova-compute.log"}, ...]`` and answers one ``LineScore`` per line, in input order.

Why raw lines: an MLflow user has log lines, not this project's parsed records. The pyfunc parses them with the
project's own parser (``parse.text``, one file per ``source``, lines in order), so template ids and sessions are
what ``rca score`` computes for the same lines. A line in no known layout is still scored but says
``parsed: false``; a batch with no parsable line at all is refused (HTTP 400), so text that is not a log never
scores 1.0 quietly. Unknown fields are refused too (``extra="forbid"``): MLflow's column signatures would drop
them with only a warning.

The input/output types are the signature (MLflow reads the type hints). This module, ``parse`` and ``score`` travel
with the model as its ``code_paths``; loading needs numpy, pyarrow, pandas, pydantic and mlflow-skinny only.
"""

from __future__ import annotations

from typing import Optional

import mlflow.pyfunc
import pyarrow as pa
import pydantic

DEFAULT_SOURCE = "request.log"


class LogLine(pydantic.BaseModel):
    """One input line. ``source`` names the file it came from (it names the service, and lines of one source are
    parsed together, in order, as one file)."""

    model_config = pydantic.ConfigDict(extra="forbid")
    line: str
    source: Optional[str] = None


class LineScore(pydantic.BaseModel):
    """One output row per input line: the score of the record the line belongs to (a traceback line shares its
    record's), or nulls for a blank line."""

    source: str
    line_no: int
    record_line_no: Optional[int] = None
    parsed: bool = False
    template_id: Optional[str] = None
    anomaly: Optional[float] = None
    rank: Optional[int] = None
    anomalous: Optional[bool] = None
    importance: Optional[float] = None
    expected: Optional[list[str]] = None


class BadLines(ValueError):
    """The batch cannot be scored as log lines (the pyfunc answers it as MLflow's INVALID_PARAMETER_VALUE: 400)."""


class DeepLogPyfunc(mlflow.pyfunc.PythonModel):
    def load_context(self, context) -> None:
        from .bundle import ModelBundle

        self.bundle = ModelBundle.load(context.artifacts["bundle"])

    def __getstate__(self) -> dict:
        # MLflow loads the context before it pickles the instance: the weights live in the artifact, not the pickle
        return {k: v for k, v in self.__dict__.items() if k != "bundle"}

    def predict(self, context, model_input: list[LogLine], params=None) -> list[LineScore]:
        try:
            return score_lines(self.bundle, model_input)
        except BadLines as exc:
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from None


def score_lines(bundle, lines: list[LogLine]) -> list[LineScore]:
    """Parse ``lines`` (grouped by source, order kept), score them together, and spread each record's score over
    the lines it spans."""
    from ..parse.text import parse_text

    groups: dict[str, list[int]] = {}
    for i, item in enumerate(lines):
        if "\n" in item.line or "\r" in item.line.rstrip("\r"):
            raise BadLines(f"line {i} holds a line break; send one log line per item")
        groups.setdefault(item.source or DEFAULT_SOURCE, []).append(i)
    tables = [parse_text("\n".join(lines[i].line for i in idx) + "\n", source).table
              for source, idx in groups.items()]
    table = pa.concat_tables(tables) if tables else None
    if table is None or not any(table["parsed"].to_pylist()):
        raise BadLines(f"no log records in {len(lines)} line(s): none in a known log layout (oslo.log, journald, "
                       "CRI, RabbitMQ, MariaDB, libvirtd); send the log lines as they were written")
    scores = bundle.score(table)
    cols = {c: table[c].to_pylist() for c in ("source", "line_no", "line_end", "parsed", "template_id")}
    s = {c: scores[c].to_pylist() for c in ("anomaly", "rank", "anomalous", "importance", "expected")}
    out: list[Optional[LineScore]] = [None] * len(lines)
    for r in range(table.num_rows):
        idx = groups[cols["source"][r]]  # input position of each of this source's lines
        first, last = cols["line_no"][r], cols["line_end"][r] or cols["line_no"][r]
        for ln in range(first, min(last, len(idx)) + 1):
            out[idx[ln - 1]] = LineScore(
                source=cols["source"][r], line_no=ln, record_line_no=first, parsed=bool(cols["parsed"][r]),
                template_id=cols["template_id"][r], anomaly=float(s["anomaly"][r]), rank=int(s["rank"][r]),
                anomalous=bool(s["anomalous"][r]), importance=float(s["importance"][r]),
                expected=s["expected"][r])
    for source, idx in groups.items():  # blank lines belong to no record
        for ln, i in enumerate(idx, 1):
            if out[i] is None:
                out[i] = LineScore(source=source, line_no=ln)
    return out  # type: ignore[return-value]
