"""Grouping accuracy, the log-parsing field's standard metric (Zhu et al., ICSE-SEIP 2019; loghub).

A line counts as correct only when the whole group it was put in equals, as a set of lines, one ground-truth
event's group. One stray line spoils its group, so the metric punishes both over- and under-merging.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Hashable, Sequence


def grouping_accuracy(predicted: Sequence[Hashable], truth: Sequence[Hashable]) -> float:
    if len(predicted) != len(truth):
        raise ValueError(f"predicted has {len(predicted)} labels, truth {len(truth)}; they must align line by line")
    if not truth:
        raise ValueError("grouping accuracy of zero lines is undefined")
    pred_groups: dict[Hashable, list[int]] = defaultdict(list)
    true_groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, (p, t) in enumerate(zip(predicted, truth)):
        pred_groups[p].append(i)
        true_groups[t].append(i)
    true_sets = {frozenset(v) for v in true_groups.values()}
    correct = sum(len(v) for v in pred_groups.values() if frozenset(v) in true_sets)
    return correct / len(truth)
