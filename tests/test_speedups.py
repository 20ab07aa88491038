"""The C masking path gives exactly what the regex gives: on real logs, on the simulator's, and on random text."""

from __future__ import annotations

import random

import pytest

from openstack_rca import simulate
from openstack_rca.parse import masking

speedups = pytest.importorskip("openstack_rca.parse._speedups", reason="C extension not built (no compiler?)")

EDGE = [
    "", "1", "a", "/", "http://", "https://x", "httpx://1", "v2", "HTTP/1.1", "tap/1", "a,1", "1,2,3", "1,a", "1,,2",
    "x=1,2 y", "(1)", "[1]", "'1'", '"1"', "a-1.b+2/c", ".5", "+1", "-1", "a1b", "_1", "1_a", "é1", "a\x1c1",
    "GET /v2.1/servers/detail?all_tenants=1&x=2 HTTP/1.1", "10.0.0.1,10.0.0.2 \"GET /\" status: 200",
    "network-vif-plugged:9f1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d", "name=compute-1 phys_ram=64172MB pci_stats=[]",
    "image 0d5c at (/var/lib/nova/instances/_base/a489c868): checking", "http://ctl:9292/v2/images/1 done",
    "a,/b", "1,/b", "x,1", ",1", "1,", "//", "/(", "a/1 /1 1/ 1/a", "ftp://1", "hhttp://1", "1http://x",
]


def check(message: str) -> None:
    expect = masking.VARIABLE.sub(masking.WILDCARD, message)
    got = speedups.template_of(message)
    if not message.isascii():
        assert got is None
        return
    assert got == expect, message
    tpl, params = speedups.mask(message)
    assert (tpl, params) == (expect, masking.VARIABLE.split(message)[1::2]), message


@pytest.mark.parametrize("message", EDGE)
def test_edge_cases(message):
    check(message)


def test_random_text():
    rng = random.Random(7)
    alphabet = "0123456789abcdhpstxyzAZ_.+-/:,;=()[]'\" \t\x1c?&%@h"
    for _ in range(20000):
        check("".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40))))


def test_simulated_and_loghub_messages(tmp_path, loghub):
    from openstack_rca.config import load
    from openstack_rca.parse import Parser

    simulate.simulate("rabbitmq_outage", tmp_path / "logs", lines=3000, seed=2)
    table = Parser(load(), use_cache=False).parse([tmp_path / "logs", loghub / "OpenStack_2k.log"]).table
    for message in table["message"].to_pylist():
        check(message)


def test_masking_uses_the_extension():
    assert masking.template_of("Took 1.5 seconds") == "Took <*> seconds"
    assert masking.ACCELERATED


HEADER_PIECES = {
    "prefix": ["", "", "nova-api.log.1.2017-05-16_13:53:08 ", "x.log ", ".log ", "a.logx ", "a.log\t", "nolog "],
    "date": ["2026-11-23", "2026-1-23", "2026-11-2x", "20261123"],
    "sep": [" ", "T", "_"],
    "time": ["10:00:00", "10:00:0", "10:00:00.123", "10:00:00,5", "10:00:00.", "10:00:00.x"],
    "pid": [" 4242", " ", " 42a", "  42"],
    "level": [" INFO", " WARN", " WARNING", " WARNINGX", " info", " TRACE", " AUDIT", " CRITICAL"],
    "comp": [" nova.compute.manager", " ", "  x", " a\tb", " é"],
    "ctx": [" [req-1 u p - - -]", " [instance: abc]", " [-]", " [unclosed", " []", " [a]b", " ", ""],
    "msg": [" hello 1", "", " [instance: 1] x", " tail]", "  two spaces", " é"],
}


def test_oslo_header_parser_matches_the_regexes():
    from openstack_rca.parse.layouts import BY_NAME

    rng = random.Random(11)
    checked = 0
    for _ in range(30000):
        # mostly valid pieces (each list starts with one), so many lines match and many almost do
        line = "".join(v[0] if rng.random() < 0.7 else rng.choice(v) for v in HEADER_PIECES.values())
        if rng.random() < 0.2:  # random single-character damage
            k = rng.randrange(len(line) + 1)
            line = line[:k] + rng.choice(" \t[]x1.:-") + line[k + 1:]
        for name, prefixed in (("oslo", False), ("oslo_prefixed", True)):
            got = speedups.parse_oslo(line, prefixed)
            if not line.isascii():
                assert got is None
                continue
            m = BY_NAME[name].regex.match(line)
            assert got == (m.groups() if m else False), (name, line)
            checked += m is not None
    assert checked > 1000  # the generator does produce matching lines


# -- the row builder: plain oslo lines in C, the rest in Python; the table must not tell which ---------------------
def _parse_both(data: bytes, layout: str = "oslo", **kw):
    from openstack_rca.parse import layouts as L
    from openstack_rca.parse.parser import parse_bytes

    order = (L.BY_NAME[layout],) + tuple(lay for lay in L.LAYOUTS if lay.name != layout)
    fast = parse_bytes(data, "x.log", order, fast=True, **kw)
    slow = parse_bytes(data, "x.log", order, fast=False, **kw)
    return fast, slow


def _assert_same(fast, slow):
    assert fast.table.equals(slow.table)
    for name in ("lines", "blank", "unparsed", "continuation", "truncated", "decode_errors", "layouts"):
        assert getattr(fast, name) == getattr(slow, name), name


def test_row_builder_equals_the_python_path_on_mixed_lines():
    rng = random.Random(5)
    head = "2026-11-23 10:00:0{s}.123 4242 {lvl} nova.compute.manager [req-{r} u p - - -] "
    bodies = [
        "GET /v2/servers/{r} status: 200 len: 12 time: 0.5", "Traceback (most recent call last):",
        '  File "nova/compute.py", line {r}, in spawn', "[instance: 9f1b2c3d-4e5f] spawn {r}", "[instance: broken",
        "x [instance: abc] y [instance: d]", "x [instance: abc y", "caf\u00e9 {r}", "quote \" back\\slash \x01", "",
    ]
    for _ in range(40):
        lines = []
        for k in range(300):
            c = rng.random()
            if c < 0.05:
                lines.append(rng.choice(["", "   ", "\t"]))
            elif c < 0.12:
                lines.append(rng.choice(["  File \"x.py\", line 3", "ValueError: bad 7", "not a log line 9",
                                         "INFO nova.foo [-] message only 5", "caf\u00e9 continuation"]))
            else:
                s = rng.choice("0123") if rng.random() < 0.5 else str(k % 10)
                body = rng.choice(bodies).format(r=k)
                line = head.format(s=s, lvl=rng.choice(["INFO", "ERROR", "TRACE", "WARN", "DEBUG"]), r=k % 7) + body
                lines.append(line + ("\r" if rng.random() < 0.03 else ""))
        data = "\n".join(lines).encode() + (b"\n" if rng.random() < 0.8 else b"")
        _assert_same(*_parse_both(data, first_line_no=rng.randrange(1, 9), max_line_bytes=1024))
    # long lines, invalid UTF-8 and the prefixed layout take their own branches
    long_line = head.format(s=1, lvl="INFO", r=1) + "x" * 3000
    _assert_same(*_parse_both(f"{long_line}\n{long_line} 2\n".encode(), max_line_bytes=1024))
    bad = (head.format(s=1, lvl="INFO", r=1) + "ok 1\n").encode() + b"\xff\xfe 2026\n"
    _assert_same(*_parse_both(bad * 5))
    prefixed = "nova-api.log.1 " + head.format(s=2, lvl="INFO", r=3) + "GET /v2 status: 200"
    _assert_same(*_parse_both(f"{prefixed}\n{prefixed}\nplain tail 1\n".encode(), layout="oslo_prefixed"))


def test_row_builder_equals_the_python_path_on_simulated_and_loghub_logs(tmp_path, loghub):
    from openstack_rca.parse import layouts as L
    from openstack_rca.parse.parser import parse_bytes

    files = [loghub / "OpenStack_2k.log"]
    for i, lay in enumerate(("oslo", "journald", "cri")):
        simulate.simulate("libvirt_domain_failure", tmp_path / lay, lines=1500, seed=i, layout=lay)
        files += sorted(f for f in (tmp_path / lay).rglob("*.log"))
    for f in files:
        data = f.read_bytes()
        is_cri, order = L.detect(data[:65536].decode("utf-8", "replace").split("\n")[:50])
        kw = dict(is_cri=is_cri, year=2026)
        _assert_same(parse_bytes(data, str(f), order, fast=True, **kw), parse_bytes(data, str(f), order, fast=False, **kw))


def test_json_helpers_write_what_json_dumps_writes():
    import json

    import pyarrow as pa

    rng = random.Random(3)
    alphabet = "ab1/.-_ \"\\\x00\x01\x08\x0c\n\r\t\x1f\x7fé€𝄞,()'="
    values = [""] + ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 30))) for _ in range(3000)]
    arr = pa.array(values, pa.string()).slice(1)  # a non-zero offset, as a table slice has
    _validity, offsets, data = arr.buffers()
    offs, body = speedups.json_strings(offsets, data, arr.offset, len(arr))
    quoted = pa.Array.from_buffers(pa.string(), len(arr), [None, pa.py_buffer(offs), pa.py_buffer(body)])
    assert quoted.to_pylist() == [json.dumps(v, ensure_ascii=False) for v in values[1:]]
    for v in values + EDGE:
        got = speedups.params_json(v)
        if not v.isascii():
            assert got is None
            continue
        assert got == json.dumps(masking.VARIABLE.split(v)[1::2], ensure_ascii=False), v
