"""Multi-process parsing returns exactly what one process returns, tracebacks at chunk edges included."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.compute as pc

from openstack_rca.parse import Parser

from .helpers import INST, REQ, assert_accounted, write


def corpus(n_blocks: int) -> str:
    out = []
    for i in range(n_blocks):
        ts = f"2026-11-23 10:{(i // 60) % 60:02d}:{i % 60:02d}.{i % 1000:03d}"
        h = f"{ts} 4242 ERROR nova.compute.manager"
        out += [
            f"{ts} 4242 INFO nova.compute.manager [{REQ} - - - - -] [instance: {INST}] Took {i}.5 seconds to build instance.",
            f"{h} [{REQ} - - - - -] [instance: {INST}] Instance failed to spawn: libvirtError: boom {i}",
            f"{h} [instance: {INST}] Traceback (most recent call last):",
            f'{h} [instance: {INST}]   File "/usr/lib/python3/dist-packages/nova/compute/manager.py", line {i}, in spawn',
            f"{h} [instance: {INST}] libvirt.libvirtError: boom {i}",
            "",
            "unparsable line " + "x" * (i % 7),
        ]
    return "\n".join(out) + "\n"


def test_parallel_equals_serial(cfg, tmp_path):
    p = write(tmp_path / "nova-compute.log", corpus(6000))
    serial = Parser(cfg.replace(parse=replace(cfg.parse, workers=1)), use_cache=False).parse([p])
    parallel_cfg = cfg.replace(parse=replace(cfg.parse, workers=2, parallel_min_bytes=1024))
    parallel = Parser(parallel_cfg, use_cache=False).parse([p])
    assert parallel.table.equals(serial.table)
    assert parallel.totals == serial.totals
    assert_accounted(parallel)
    # the header-less line after the blank one continues the traceback record (a multi-line message)
    assert serial.totals["records"] == 6000 * 2
    assert serial.totals["continuation"] == 6000 * 5
    exc = parallel.table.filter(pc.is_valid(parallel.table["exception"]))["exception"].to_pylist()
    assert len(exc) == 6000 and exc[-1] == "libvirt.libvirtError: boom 5999"


def test_parallel_across_many_small_files(cfg, tmp_path):
    for i in range(12):
        write(tmp_path / f"nova-compute-{i}.log", corpus(50))
    serial = Parser(cfg.replace(parse=replace(cfg.parse, workers=1)), use_cache=False).parse([tmp_path])
    parallel = Parser(cfg.replace(parse=replace(cfg.parse, workers=2, parallel_min_bytes=1024)),
                      use_cache=False).parse([tmp_path])
    assert parallel.table.equals(serial.table)
    assert [f.path for f in parallel.files] == sorted(str(p) for p in tmp_path.iterdir())


def test_progress_moves_within_a_big_file_and_ends_at_the_total(cfg, tmp_path):
    p = write(tmp_path / "nova-compute.log", corpus(3000))
    small = write(tmp_path / "z-small.log", corpus(2))
    calls = []
    Parser(cfg.replace(parse=replace(cfg.parse, workers=1, chunk_bytes=256 * 1024)), use_cache=False).parse(
        [p, small], lambda done, total: calls.append((done, total))
    )
    total = p.stat().st_size + small.stat().st_size
    assert len(calls) > 4 and calls[-1] == (total, total)
    assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))  # never goes backwards
    assert calls[0][0] < p.stat().st_size  # moved before the big file was finished


def test_journald_files_are_cut_into_chunks_too():
    from openstack_rca.parse import engine
    from openstack_rca.parse.layouts import BY_NAME

    lines = [f"Nov 23 10:{i // 60 % 60:02d}:{i % 60:02d} ctl devstack@n-cpu.service[42]: INFO nova.compute.manager "
             f"[-] tick {i}" for i in range(3000)]
    data = ("\n".join(lines) + "\n").encode()
    cuts = engine._split_points(data, 4, BY_NAME["journald"], False)
    assert len(cuts) == 5  # same pid and logger on every line: the timestamp tells records apart
