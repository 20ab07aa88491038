"""Bad input gets a clear report and loses nothing: every input line is accounted for."""

from __future__ import annotations

import gzip

import pytest

from openstack_rca.errors import InputNotFound
from openstack_rca.parse import Parser, iter_records

from .helpers import assert_accounted, write

GOOD = "2026-11-23 10:00:00.123 4242 INFO nova.compute.manager [-] Auditing locally available compute resources for node compute-1"


def run(cfg, *paths):
    res = Parser(cfg, use_cache=False).parse(paths)
    assert_accounted(res)
    return res


def test_binary_files_are_skipped_and_reported(cfg, tmp_path):
    write(tmp_path / "core.dump", bytes(range(256)) * 40)
    write(tmp_path / "nova-compute.log", GOOD + "\n")
    res = run(cfg, tmp_path)
    status = {f.path.rsplit("/", 1)[1]: f.status for f in res.files}
    assert status == {"core.dump": "binary", "nova-compute.log": "parsed"}
    assert any("binary" in w for f in res.files for w in f.warnings)
    assert res.table.num_rows == 1


def test_undecodable_bytes_are_replaced_and_counted(cfg, tmp_path):
    data = (GOOD + "\n").encode() + b"2026-11-23 10:00:01.000 4242 WARNING nova.compute.manager [-] bad \xff\xfe bytes\n"
    res = run(cfg, write(tmp_path / "nova-compute.log", data))
    recs = list(iter_records(res.table))
    assert res.totals["decode_errors"] == 1
    assert [r.decode_error for r in recs] == [False, True]
    assert "\ufffd" in recs[1].message and recs[1].level == "WARNING"


def test_long_lines_are_truncated_and_flagged(cfg, tmp_path):
    long = GOOD + " " + "x" * 70_000
    res = run(cfg, write(tmp_path / "nova-compute.log", long + "\n" + GOOD + "\n"))
    recs = list(iter_records(res.table))
    assert res.totals["truncated"] == 1
    assert recs[0].truncated and len(recs[0].raw.encode()) == 64 * 1024
    assert not recs[1].truncated
    assert any("truncated" in w for w in res.files[0].warnings)


def test_empty_and_blank_files(cfg, tmp_path):
    write(tmp_path / "empty.log", "")
    write(tmp_path / "blank.log", "\n\n   \n")
    res = run(cfg, tmp_path)
    by_name = {f.path.rsplit("/", 1)[1]: f for f in res.files}
    assert by_name["empty.log"].status == "empty"
    assert (by_name["blank.log"].lines, by_name["blank.log"].blank, by_name["blank.log"].records) == (3, 3, 0)
    assert res.table.num_rows == 0


def test_truncated_gzip_keeps_what_was_readable(cfg, tmp_path):
    body = "".join(GOOD.replace("10:00:00", f"10:{i // 60:02d}:{i % 60:02d}") + "\n" for i in range(2000))
    blob = gzip.compress(body.encode())
    res = run(cfg, write(tmp_path / "nova-compute.log.2.gz", blob[: len(blob) // 2]))
    f = res.files[0]
    assert f.compression == "gzip" and f.status == "parsed"
    assert any("truncated" in w for w in f.warnings)
    assert 0 < f.records < 2000
    assert res.table["service"][0].as_py() == "nova-compute"


def test_rotated_gzip_and_multi_member_gzip(cfg, tmp_path):
    blob = gzip.compress((GOOD + "\n").encode()) + gzip.compress((GOOD + "\n").encode())
    res = run(cfg, write(tmp_path / "nova-compute.log.1", blob))  # gzip without a .gz name
    assert res.files[0].compression == "gzip" and res.table.num_rows == 2 and not res.files[0].warnings


def test_unknown_layouts_are_kept_as_unparsed_records(cfg, tmp_path):
    text = "this is not a log line\nneither = this one 42\n" + GOOD + "\n"
    res = run(cfg, write(tmp_path / "weird.txt", text))
    recs = list(iter_records(res.table))
    assert res.totals["unparsed"] == 2
    assert [r.parsed for r in recs] == [False, False, True]
    assert recs[1].template == "neither = this one <*>"


def test_file_of_only_unknown_lines_is_flagged(cfg, tmp_path):
    res = run(cfg, write(tmp_path / "notes.txt", "hello\nworld\n"))
    assert res.totals["unparsed"] == 2
    assert any("no known log layout" in w for w in res.files[0].warnings)


def test_missing_path_raises_input_not_found(cfg, tmp_path):
    with pytest.raises(InputNotFound, match="nope"):
        Parser(cfg).parse([tmp_path / "nope"])


def test_windows_line_endings(cfg, tmp_path):
    res = run(cfg, write(tmp_path / "nova-compute.log", (GOOD + "\r\n") * 3))
    recs = list(iter_records(res.table))
    assert len(recs) == 3 and all(not r.raw.endswith("\r") and not r.message.endswith("\r") for r in recs)


def test_unreadable_file_is_reported_not_fatal(cfg, tmp_path, monkeypatch):
    from openstack_rca.parse import reader

    secret = write(tmp_path / "secret.log", GOOD + "\n")
    write(tmp_path / "ok.log", GOOD + "\n")
    real = reader._map

    def guarded(path):  # tests run as root, where mode 000 does not stop a read
        if path == secret:
            raise PermissionError(13, "Permission denied")
        return real(path)

    monkeypatch.setattr(reader, "_map", guarded)
    res = run(cfg, tmp_path)
    by_name = {f.path.rsplit("/", 1)[1]: f for f in res.files}
    assert by_name["secret.log"].status == "unreadable" and "Permission denied" in by_name["secret.log"].warnings[0]
    assert by_name["ok.log"].status == "parsed" and res.table.num_rows == 1


# -- empty or log-less input: refused at once, before any model loads ------------------------------------------

def test_analyze_refuses_input_without_log_records(cfg, tmp_path):
    from openstack_rca.analyze import Analyzer
    from openstack_rca.errors import InvalidInput

    (tmp_path / "empty").mkdir()
    write(tmp_path / "junk" / "notes.txt", "hello world\nfoo bar\n")
    az = Analyzer(cfg)
    with pytest.raises(InvalidInput, match=r"no log records in .*empty: 0 files"):
        az.analyze("instances fail to boot", paths=[str(tmp_path / "empty")])
    with pytest.raises(InvalidInput, match=r"1 file\(s\), 2 line\(s\), none in a known log layout"):
        az.analyze("instances fail to boot", paths=[str(tmp_path / "junk")])
    with pytest.raises(InvalidInput, match="no log records in the log text"):
        az.analyze("instances fail to boot", text="hello world\n")
    with pytest.raises(InvalidInput, match="no log records"):
        az.ingest([str(tmp_path / "junk")], "junk")
    assert az._loaded is None  # refused before the model was asked for


@pytest.mark.parametrize("content", [None, "hello world\nfoo bar\n"], ids=["empty-dir", "non-log-text"])
def test_cli_analyze_without_log_records_exits_nonzero_at_once(tmp_path, content):
    import subprocess
    import sys
    import time

    logs = tmp_path / "logs"
    logs.mkdir()
    if content is not None:
        write(logs / "notes.txt", content)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "openstack_rca", "analyze", "--issue", "instances fail",
                           "--logs", str(logs)], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert time.perf_counter() - t0 < 20  # no model load
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and f"no log records in {logs}" in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and not proc.stdout.strip()
