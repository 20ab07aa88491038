"""The simulator's logs, in every layout, parse completely: no unparsed line, every root-cause reference is a record."""

from __future__ import annotations

import pyarrow.compute as pc
import pytest

from openstack_rca import simulate
from openstack_rca.simulate.world import TENANTS
from openstack_rca.parse import Parser, iter_records

from .helpers import assert_accounted

FAULTS = [f for f in simulate.FAULTS if f != "none"]


@pytest.mark.parametrize("layout", simulate.LAYOUTS)
@pytest.mark.parametrize("fault", FAULTS)
def test_simulated_logs_parse_completely(cfg, tmp_path, fault, layout):
    truth = simulate.simulate(fault, tmp_path / "logs", lines=1500, seed=3, layout=layout)
    cfg = cfg.replace(parse=type(cfg.parse)(journal_year=2026))
    res = Parser(cfg, use_cache=False).parse([tmp_path / "logs"])
    assert_accounted(res)
    t = res.totals
    assert t["lines"] == truth["lines"]
    assert t["unparsed"] == 0, [r.raw for r in iter_records(res.table) if not r.parsed][:3]
    assert pc.sum(pc.is_null(res.table["timestamp"])).as_py() == 0
    assert pc.sum(pc.is_null(res.table["service"])).as_py() == 0
    starts = {(s.split("/logs/", 1)[1], n) for s, n in zip(res.table["source"].to_pylist(), res.table["line_no"].to_pylist())}
    for ref in truth["root_cause"]:
        assert (ref["file"], ref["line"]) in starts, f"root-cause line {ref} is not the start of a record"


def test_devstack_context_is_project_then_user(cfg, tmp_path):
    simulate.simulate("none", tmp_path / "logs", lines=400, seed=1, layout="journald")
    res = Parser(cfg.replace(parse=type(cfg.parse)(journal_year=2026)), use_cache=False).parse([tmp_path / "logs"])
    journal = res.table.filter(pc.equal(res.table["layout"], "journald"))
    pairs = {(u, p) for u, p in zip(journal["user_id"].to_pylist(), journal["project_id"].to_pylist()) if u and p}
    tenants = {(user, project) for project, user in TENANTS if user != project}
    seen = {pair for pair in tenants if pair in pairs or pair[::-1] in pairs}
    assert seen, "expected traffic from tenants whose user and project names differ"
    assert all(pair in pairs for pair in seen)  # (user, project), never swapped
