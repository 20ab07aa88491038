"""The parsed-record schema: one Arrow table, one row per log record (a record may span several lines).

Columnar because every later step (cache, sessions, scoring, search) works on columns, and because building
200k Python objects would cost more than parsing the lines. ``Record`` is the row view for JSON and humans.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Iterator, Optional

import pyarrow as pa

from .masking import mask

SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("line_no", pa.int32()),
        ("line_end", pa.int32()),
        ("timestamp", pa.string()),
        ("pid", pa.int32()),
        ("level", pa.string()),
        ("component", pa.string()),
        ("service", pa.string()),
        ("request_id", pa.string()),
        ("global_request_id", pa.string()),
        ("user_id", pa.string()),
        ("project_id", pa.string()),
        ("instance_id", pa.string()),
        ("message", pa.string()),
        ("template_id", pa.string()),
        ("template", pa.string()),
        ("exception", pa.string()),
        ("layout", pa.string()),
        ("parsed", pa.bool_()),
        ("truncated", pa.bool_()),
        ("decode_error", pa.bool_()),
        ("raw", pa.string()),
    ]
)
COLUMNS = SCHEMA.names


@dataclass(frozen=True)
class Record:
    source: str
    line_no: int
    line_end: int
    timestamp: Optional[str]
    pid: Optional[int]
    level: Optional[str]
    component: Optional[str]
    service: Optional[str]
    request_id: Optional[str]
    global_request_id: Optional[str]
    user_id: Optional[str]
    project_id: Optional[str]
    instance_id: Optional[str]
    message: str
    template_id: str
    template: str
    exception: Optional[str]
    layout: str
    parsed: bool
    truncated: bool
    decode_error: bool
    raw: str

    @property
    def params(self) -> list[str]:
        """The template's variable values, in order; derived from the message so it is never stored twice."""
        return mask(self.message)[1]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["params"] = self.params
        return d


def iter_records(table: pa.Table, batch_size: int = 4096) -> Iterator[Record]:
    for batch in table.to_batches(max_chunksize=batch_size):
        cols = [batch.column(name).to_pylist() for name in COLUMNS]
        for row in zip(*cols):
            yield Record(*row)


def empty_table() -> pa.Table:
    return SCHEMA.empty_table()
