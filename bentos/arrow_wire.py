"""Arrow tables over the wire between the entry service and the scorer: IPC stream bytes, base64 in JSON.

Only the columns scoring reads travel (sessions, windows, severity), so a 100k-record table is a few MB.
"""

from __future__ import annotations

import base64

import pyarrow as pa

SCORING_COLUMNS = ("source", "line_no", "timestamp", "pid", "level", "service", "request_id", "instance_id",
                   "template_id")


def dumps(table: pa.Table) -> str:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return base64.b64encode(sink.getvalue().to_pybytes()).decode("ascii")


def loads(data: str) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(base64.b64decode(data))).read_all()


def for_scoring(table: pa.Table) -> pa.Table:
    return table.select([c for c in SCORING_COLUMNS if c in table.column_names])
