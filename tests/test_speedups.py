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
