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
    expect = masking._VARIABLE.sub(masking.WILDCARD, message)
    got = speedups.template_of(message)
    if not message.isascii():
        assert got is None
        return
    assert got == expect, message
    tpl, params = speedups.mask(message)
    assert (tpl, params) == (expect, masking._VARIABLE.split(message)[1::2]), message


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
