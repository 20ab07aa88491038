"""The contract between a fault and the background traffic around it.

While a fault is active, background flows that it would break (boots through a dead broker, requests through a
nova-api that cannot validate tokens, boots on the broken host) stand aside: the fault writes those requests
itself, failing the way they really fail. Everything the fault does not touch keeps running normally.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime

from .events import Sink
from .ids import Ids
from .world import World

HOST_KINDS = frozenset({"boot", "delete", "attach"})
"""Flows that land on one compute host; a host-scoped fault takes over only these, only on its host."""


@dataclass
class Disruption:
    start: datetime
    """A little before the fault, so no background boot is half-way through when it hits."""
    end: datetime | None = None
    """None until the fault has decided how long it lasts (until then it lasts)."""
    blocked: frozenset[str] = frozenset()
    host: str | None = None

    def active(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    def blocks(self, kind: str, t: datetime, host: str | None = None) -> bool:
        if not self.active(t):
            return False
        if kind in self.blocked:
            return True
        return host is not None and host == self.host and kind in HOST_KINDS

    def avoid(self, t: datetime) -> set[str]:
        """Hosts background boots must not be scheduled to at ``t``."""
        return {self.host} if self.host and self.active(t) else set()


@dataclass
class FaultCtx:
    """Everything an injector needs, plus what it reports back for the ground truth."""

    s: Sink
    w: World
    t0: datetime
    end: datetime
    """End of the simulated span: nothing should be scheduled after it."""
    host: str
    """The compute host a host-scoped fault hits (drawn before the run so traffic can avoid it)."""
    budget: int
    """About how many lines the fault may write; repeated symptoms stop before exceeding it."""
    dis: Disruption
    instances: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    summary: str | None = None

    @property
    def rng(self) -> random.Random:
        return self.w.rng

    @property
    def ids(self) -> Ids:
        return self.w.ids

    @property
    def spent(self) -> int:
        return self.s.lines["fault"]

    def left(self) -> int:
        return self.budget - self.spent

    def affect(self, *, instance: str | None = None, request: str | None = None) -> None:
        if instance and instance not in self.instances:
            self.instances.append(instance)
        if request and request not in self.requests:
            self.requests.append(request)
