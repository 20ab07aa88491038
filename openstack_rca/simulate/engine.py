"""Runs one simulated history: plan every flow on a timeline, execute it in time order against the world.

Sizing: the caller asks for about N lines. One calibration run measures how many lines a background flow writes
on average; the real run plans that many flows (fewer if it overshoots), and single-line requests top it up to
the exact target. Only sets too small for their fixed parts (periodic tasks, the fault) end up above the target.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from . import traffic
from .events import Sink
from .faults import Fault
from .ids import Ids, after
from .window import Disruption, FaultCtx
from .world import World

LINES_PER_FLOW = 7.5
"""Initial guess for the calibration run."""


@dataclass
class Run:
    sink: Sink
    world: World
    start: datetime
    end: datetime
    fx: FaultCtx | None


def span_seconds(lines: int) -> float:
    """About 0.72 s per line (5000 lines = one hour), but never under 20 minutes so slow faults fit."""
    return max(1200.0, lines * 0.72)


def simulate_events(fault: Fault, seed: int, lines: int, start: datetime) -> Run:
    n0 = max(8, int(lines * 0.6 / LINES_PER_FLOW))
    probe = run(fault, seed, lines, start, n0)
    flow = probe.sink.lines["flow"]
    other = probe.sink.total - flow
    per_flow = flow / n0 if flow else LINES_PER_FLOW
    n = max(0, round((lines * 0.97 - other) / per_flow))
    best = None
    for _ in range(6):  # the fixed parts vary from run to run: shrink the request count until it fits
        final = run(fault, seed, lines, start, n)
        over = final.sink.total - lines
        if best is None or over < best.sink.total - lines:
            best = final
        if over <= 0 or n == 0:
            break
        n = max(0, n - math.ceil(over / per_flow) - 1)
    assert best is not None
    _top_up(best, lines)
    return best


def run(fault: Fault, seed: int, lines: int, start: datetime, n_flows: int) -> Run:
    rng = random.Random(seed)
    ids = Ids(rng)
    span = span_seconds(lines)
    end = after(start, span)
    w = World(rng, ids, rng.randint(2, 2 + min(2, lines // 1500)), seed)  # small sets: fewer hosts to fill
    w.seed_instances()
    s = Sink()

    t_fault = after(start, span * rng.uniform(*fault.start_range)) if fault.inject else None
    host = rng.choice(w.hosts).name
    dis = (Disruption(after(t_fault, -30), None, fault.blocks, host if fault.host_scoped else None)
           if t_fault else Disruption(after(end, 10 ** 6)))

    plan: list[tuple[datetime, int, str, str | None]] = []
    _plan_periodic(plan, w, rng, start, end, span, lines)
    _plan_requests(plan, w, rng, start, end, span, n_flows)
    if t_fault:
        plan.append((t_fault, len(plan), "fault", None))
    plan.sort(key=lambda p: (p[0], p[1]))

    fx = None
    for t, _, kind, arg in plan:
        if kind == "fault":
            assert fault.inject is not None
            s.kind = "fault"
            fx = FaultCtx(s, w, t, end, host, max(60, int(lines * 0.22)), dis)
            fx.summary = fault.inject(fx)
        elif kind in ("audit", "sync", "imagecache"):
            s.kind = "periodic"
            if not dis.blocks(kind, t):
                {"audit": traffic.audit, "sync": traffic.sync_power, "imagecache": traffic.image_cache}[kind](
                    s, w, t, arg)
        else:
            s.kind = "flow"
            traffic.run(kind, s, w, t, dis, arg)
    return Run(s, w, start, end, fx)


def _plan_periodic(plan: list, w: World, rng: random.Random, start: datetime, end: datetime, span: float,
                   lines: int) -> None:
    """Resource audits every ``interval`` (60 s in a 5000-line hour), power sync every 10th, image cache 40 min."""
    per_audit = 5 * len(w.hosts)
    share = 0.2 if lines >= 1000 else 0.12  # tiny sets: leave room for the fault and the mandatory flows
    interval = 60 * max(1, math.ceil(span * per_audit / (share * lines) / 60))
    for h in w.hosts:
        t = after(start, rng.uniform(1, interval))
        n = 0
        while t < end:
            plan.append((t, len(plan), "audit", h.name))
            if n % 10 == 9:
                plan.append((after(t, rng.uniform(2, 9)), len(plan), "sync", h.name))
            t = after(t, interval + rng.uniform(-0.4, 0.4))
            n += 1
        t = after(start, rng.uniform(60, 2400))
        while t < end:
            plan.append((t, len(plan), "imagecache", h.name))
            t = after(t, 2400 + rng.uniform(-1, 1))


def _plan_requests(plan: list, w: World, rng: random.Random, start: datetime, end: datetime, span: float,
                   n: int) -> None:
    """Random request mix, plus one of each kind early on so every service's log has content."""
    for h in w.hosts:
        plan.append((after(start, span * rng.uniform(0.05, 0.3)), len(plan), "boot", h.name))
    for kind in ("volume", "churn", "db_noise", "token"):
        plan.append((after(start, span * rng.uniform(0.02, 0.3)), len(plan), kind, None))
    kinds = list(traffic.WEIGHTS)
    weights = list(traffic.WEIGHTS.values())
    for kind in rng.choices(kinds, weights, k=n):
        plan.append((after(start, rng.uniform(5, span - 40)), len(plan), kind, None))


def _top_up(r: Run, lines: int) -> None:
    """Single-line requests at random times until the set has exactly ``lines`` lines."""
    s, w, rng = r.sink, r.world, r.world.rng
    s.kind = "fill"
    dis = r.fx.dis if r.fx else Disruption(r.end + timedelta(days=1))
    span = (r.end - r.start).total_seconds()
    while s.total < lines:
        traffic.run(rng.choice(traffic.FILLERS), s, w, after(r.start, rng.uniform(2, span - 2)), dis)
