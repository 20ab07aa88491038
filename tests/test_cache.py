"""The parsed cache: a second run over the same logs skips parsing and returns the same records."""

from __future__ import annotations

import shutil

import pytest

from openstack_rca.parse import Parser
from openstack_rca.parse import parser as parser_mod

from .helpers import write

LINE = "2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [-] Took 3.21 seconds to build instance."


def test_second_run_is_a_cache_hit_with_identical_records(cfg, tmp_path, monkeypatch):
    p = write(tmp_path / "logs" / "nova-compute.log", (LINE + "\n") * 50 + "\n")
    first = Parser(cfg).parse([p])
    assert first.files[0].status == "parsed"

    calls = []
    real = parser_mod.parse_bytes
    monkeypatch.setattr("openstack_rca.parse.engine.parse_bytes", lambda *a, **k: calls.append(1) or real(*a, **k))
    second = Parser(cfg).parse([p])
    assert calls == []  # the parser never ran
    assert second.files[0].status == "cached"
    assert second.table.equals(first.table)
    assert second.totals["lines"] == first.totals["lines"] == 51
    assert second.totals["blank"] == 1


def test_cache_follows_content_not_path(cfg, tmp_path):
    a = write(tmp_path / "a" / "nova-compute.log", LINE + "\n")
    Parser(cfg).parse([a])
    b = tmp_path / "b" / "nova-compute.log"
    b.parent.mkdir()
    shutil.copy(a, b)
    res = Parser(cfg).parse([b])
    assert res.files[0].status == "cached"
    assert res.table["source"].to_pylist() == [str(b)]  # relabelled with the path it was read under
    write(b, LINE.replace("3.21", "9.99") + "\n")
    assert Parser(cfg).parse([b]).files[0].status == "parsed"


def test_cache_can_be_disabled(cfg, tmp_path):
    p = write(tmp_path / "nova-compute.log", LINE + "\n")
    Parser(cfg).parse([p])
    assert Parser(cfg, use_cache=False).parse([p]).files[0].status == "parsed"


def test_damaged_cache_entry_is_a_miss(cfg, tmp_path):
    p = write(tmp_path / "nova-compute.log", LINE + "\n")
    Parser(cfg).parse([p])
    for entry in (f for f in cfg.parsed_cache_dir.rglob("*") if f.is_file()):
        entry.write_bytes(b"not parquet")
    res = Parser(cfg).parse([p])
    assert res.files[0].status == "parsed" and res.table.num_rows == 1


def test_cache_hit_on_a_memory_mapped_file(cfg, tmp_path):
    p = write(tmp_path / "nova-compute.log", (LINE + "\n") * 20000 + "\n\n")  # > 1 MiB: read through mmap
    assert p.stat().st_size > 1024 * 1024
    first = Parser(cfg).parse([p])
    second = Parser(cfg).parse([p])
    assert [f.status for f in (first.files[0], second.files[0])] == ["parsed", "cached"]
    assert second.totals == {**first.totals, "files_parsed": 0, "files_cached": 1}
    assert second.totals["blank"] == 2 and second.table.equals(first.table)


def test_an_entry_written_chunk_by_chunk_is_a_hit_with_the_same_accounting(tmp_path):
    from dataclasses import replace

    from openstack_rca.config import load

    base = load()
    cfg = base.replace(parse=replace(base.parse, chunk_bytes=64 * 1024, parallel_min_bytes=0, workers=2))
    tb = ("2026-11-23 10:00:01.500 4242 ERROR nova.compute.manager [-] Traceback (most recent call last):\n"
          "  File \"x.py\", line 3, in f\n\nValueError: boom\n")
    p = write(tmp_path / "nova-compute.log", (LINE + "\n" + tb + "\n") * 3000)
    first = Parser(cfg).parse([p])
    second = Parser(cfg).parse([p])
    assert [f.status for f in (first.files[0], second.files[0])] == ["parsed", "cached"]
    assert second.totals == {**first.totals, "files_parsed": 0, "files_cached": 1}
    assert second.table.equals(first.table) and first.totals["continuation"] > 0


def test_a_failed_parse_leaves_no_entry_behind(cfg, tmp_path, monkeypatch):
    from dataclasses import replace

    cfg = cfg.replace(parse=replace(cfg.parse, chunk_bytes=64 * 1024, workers=1))
    lines = [LINE.replace("10:00:00.123", f"10:{i // 60 % 60:02d}:{i % 60:02d}.123") for i in range(5000)]
    p = write(tmp_path / "nova-compute.log", "\n".join(lines) + "\n")  # headers differ: cut into chunks
    real = parser_mod.parse_bytes
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*a, **k)

    monkeypatch.setattr("openstack_rca.parse.engine.parse_bytes", flaky)
    with pytest.raises(RuntimeError):
        Parser(cfg).parse([p])
    assert [f for f in cfg.parsed_cache_dir.rglob("*") if f.is_file()] == []
