"""Template mining on loghub's OpenStack_2k against its ground truth (Zhu et al., ISSRE 2023)."""

from __future__ import annotations

import csv

from openstack_rca.parse import Parser
from openstack_rca.parse.evaluation import grouping_accuracy

from .helpers import assert_accounted


def test_grouping_accuracy_on_loghub(cfg, loghub):
    res = Parser(cfg, use_cache=False).parse([loghub / "OpenStack_2k.log"])
    assert_accounted(res)
    with open(loghub / "OpenStack_2k.log_structured.csv", newline="") as fh:
        truth = [row["EventId"] for row in csv.DictReader(fh)]
    predicted = res.table["template_id"].to_pylist()
    assert len(predicted) == len(truth) == 2000
    assert grouping_accuracy(predicted, truth) >= 0.99
    assert set(res.table["service"].to_pylist()) == {"nova-api", "nova-compute", "nova-scheduler"}


def test_grouping_accuracy_metric():
    assert grouping_accuracy(["a", "a", "b"], [1, 1, 2]) == 1.0
    assert grouping_accuracy(["a", "a", "a"], [1, 1, 2]) == 0.0  # one over-merged group spoils all its lines
    assert grouping_accuracy(["a", "b", "c"], [1, 1, 2]) == 1 / 3
