"""The promotion gate: a new version takes the served alias only when its held-out metrics are no worse than the
current champion's.

Two metrics, both measured on the sessions ``train`` held out: ``top_g_accuracy`` (how often the next event is
among the model's g likeliest; higher is better) and ``session_false_positive_rate`` (normal sessions the model
would flag; lower is better). "No worse" allows ``model.promotion_tolerance`` (absolute) on each, so noise between
two retrains on similar logs does not block one. The champion's metrics are the ones its own run recorded (its
own held-out sessions), which is what ``rca models list`` shows. The first model is promoted; ``--promote``
forces, ``--no-promote`` never moves the alias.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

GATE = (("top_g_accuracy", 1), ("session_false_positive_rate", -1))
"""(metric, direction): +1 when higher is better."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str

    @property
    def tag(self) -> str:
        return "promoted" if self.promote else "rejected"


def decide(candidate: Mapping[str, float], champion: Optional[Mapping[str, float]], champion_version: Optional[str],
           tolerance: float, force: Optional[bool] = None) -> Decision:
    if force is True:
        return Decision(True, "forced with --promote")
    if force is False:
        return Decision(False, "not promoted: --no-promote")
    if champion_version is None:
        return Decision(True, "first model: no champion to compare with")
    worse, notes = [], []
    for name, sign in GATE:
        new, old = candidate.get(name), (champion or {}).get(name)
        if new is None:
            return Decision(False, f"candidate has no {name}")
        if old is None:
            notes.append(f"champion v{champion_version} has no {name}")
            continue
        text = f"{name} {new:.4f} vs {old:.4f}"
        (worse if sign * (new - old) < -tolerance else notes).append(text)
    if worse:
        return Decision(False, f"worse than champion v{champion_version} (tolerance {tolerance:g}): "
                               + "; ".join(worse))
    return Decision(True, f"no worse than champion v{champion_version} (tolerance {tolerance:g}): "
                          + "; ".join(notes))
