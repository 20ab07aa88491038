"""Parse log text that arrives in a request body rather than a file (the service's /score, /analyze, gRPC).

Same layouts, masking and template ids as files; one request body is treated as one file named ``source``. The
line accounting comes back with the table, so the caller can report every line as parsed or unparsed.
"""

from __future__ import annotations

from datetime import datetime, timezone

from . import layouts as L
from . import services
from .parser import ChunkResult, parse_bytes
from .records import SCHEMA

_SAMPLE_LINES = 200


def parse_text(text: str | bytes, source: str = "request", *, max_line_bytes: int = 64 * 1024,
               year: int = 0) -> ChunkResult:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else bytes(text)
    if not data.strip():
        return ChunkResult(table=SCHEMA.empty_table())
    if not data.endswith(b"\n"):
        data += b"\n"
    head = data[: 256 * 1024].decode("utf-8", "replace").split("\n")[:_SAMPLE_LINES]
    is_cri, order = L.detect(head)
    res = parse_bytes(data, source, tuple(order), is_cri=is_cri, year=year or datetime.now(timezone.utc).year,
                      max_line_bytes=max_line_bytes, path_service=services.from_path(source))
    if res.table is None:
        res.table = SCHEMA.empty_table()
    return res


def totals(res: ChunkResult) -> dict[str, int]:
    """The accounting of one parsed body in the shape of ``ParseResult.summary()["totals"]``."""
    return {"files": 1, "lines": res.lines, "records": res.table.num_rows, "continuation": res.continuation,
            "blank": res.blank, "unparsed": res.unparsed, "truncated": res.truncated}
