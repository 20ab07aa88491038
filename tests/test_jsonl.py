"""``rca parse --json`` is written from Arrow columns; it must stay byte for byte the per-record reference,
``json.dumps(record.to_dict(), ensure_ascii=False)``, whatever the records hold."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from openstack_rca import simulate
from openstack_rca.parse import Parser, iter_records
from openstack_rca.parse.jsonl import write_jsonl

from .helpers import INST, REQ, write

HEAD = "2026-11-23 10:00:0{s}.123 4242 {lvl} nova.compute.manager"
LINES = [
    "not a log line",
    f"{HEAD.format(s=0, lvl='INFO')} [{REQ} - - - - -] [instance: {INST}] Claim successful on node compute-1",
    f'{HEAD.format(s=1, lvl="INFO")} [-] 10.0.0.1 "GET /v2/servers?name=a\\"b HTTP/1.1" status: 200 len: 9 time: 0.5',
    f"{HEAD.format(s=2, lvl='ERROR')} [-] Instance failed to spawn",
    f"{HEAD.format(s=2, lvl='ERROR')} [-] Traceback (most recent call last):",
    f'{HEAD.format(s=2, lvl="ERROR")} [-]   File "/usr/lib/python3/nova/virt.py", line 12, in spawn',
    f"{HEAD.format(s=2, lvl='ERROR')} [-] nova.exception.InstanceDeployFailure: boom",
    "",
    f"{HEAD.format(s=3, lvl='WARNING')} [-] caf\u00e9 \u20ac 3 \U0001d11e \x01 tab\there back\\slash path /a\\b\x02c",
    f"{HEAD.format(s=4, lvl='INFO')} [None req-1 admin admin] windows line 5\r",
    "  an indented continuation line",
    f"{HEAD.format(s=5, lvl='INFO')} [] empty context",
]


def reference(table) -> bytes:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in iter_records(table)).encode()


def written(table, **kw) -> bytes:
    out = io.BytesIO()
    write_jsonl(table, out, **kw)
    return out.getvalue()


@pytest.mark.parametrize("fast", [True, False], ids=["c-helpers", "arrow-only"])
def test_writer_equals_the_per_record_reference(cfg, tmp_path, fast):
    write(tmp_path / "logs" / "nova-compute.log", "\n".join(LINES) + "\n")
    write(tmp_path / "logs" / "bad.log", b"2026-11-23 10:00:00.123 1 INFO x [-] ok\n\xff\xfe bytes\n")
    simulate.simulate("no_valid_host", tmp_path / "logs" / "sim", lines=1500, seed=3)
    table = Parser(cfg, use_cache=False).parse([tmp_path / "logs"]).table
    assert table.num_rows > 1000
    # small batches: many batch boundaries, and merged runs of small per-file chunks
    assert written(table, fast=fast, rows_per_batch=64) == reference(table)
    assert written(table, fast=fast) == reference(table)


def test_cli_json_is_the_reference_output(cfg, tmp_path):
    p = write(tmp_path / "nova-compute.log", "\n".join(LINES) + "\n")
    res = subprocess.run([sys.executable, "-m", "openstack_rca", "parse", "--json", str(p)], capture_output=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout == reference(Parser(cfg).parse([p]).table)


def test_empty_table_writes_nothing(cfg, tmp_path):
    p = write(tmp_path / "empty.log", "\n\n")
    assert written(Parser(cfg).parse([p]).table) == b""
