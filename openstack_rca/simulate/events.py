"""The record every generator emits and every layout renders.

Generators never format lines themselves: they emit ``Event``s (one log record plus its traceback lines) into a
``Sink``. The layout decides file and header later, so one simulated history renders identically into the oslo,
journald and cri layouts and the ground truth can point at exact lines in each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Ctx:
    """An oslo.context request context as the log header shows it.

    ``req`` None renders ``[-]`` (no context); ``user`` None renders a periodic/service context.
    """

    req: str | None = None
    global_req: str | None = None
    user: str | None = None
    project: str | None = None
    user_name: str | None = None
    project_name: str | None = None

    def oslo(self) -> str:
        """oslo.log default: ``[global request user project domain user_domain project_domain]``."""
        if self.req is None:
            return "[-]"
        head = f"{self.global_req or 'None'} {self.req}"
        if self.user is None:
            return f"[{head} - - - - - -]"
        return f"[{head} {self.user} {self.project} - default default]"

    def devstack(self) -> str:
        """DevStack's systemd format: ``[global request project_name user_name]``."""
        if self.req is None:
            return "[-]"
        head = f"{self.global_req or 'None'} {self.req}"
        if self.user is None:
            return f"[{head} None None]"
        return f"[{head} {self.project_name} {self.user_name}]"


NO_CTX = Ctx()

ROOT = "root_cause"
SYMPTOM = "symptom"


@dataclass
class Event:
    """One log record. Native services (rabbitmq, mysql, libvirtd) carry their text after the timestamp."""

    t: datetime
    service: str
    host: str
    level: str  # DEBUG, INFO, WARNING, ERROR, CRITICAL (normalised also for native services)
    logger: str
    ctx: Ctx
    text: str
    instance: str | None = None
    trace: tuple[str, ...] = ()
    role: str | None = None
    native: bool = False
    seq: int = 0

    @property
    def nlines(self) -> int:
        return 1 + len(self.trace)


class Sink:
    """Collects events in emission order and counts lines per flow kind (the engine sizes traffic with it)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.kind = "other"
        self.lines: Counter[str] = Counter()

    @property
    def total(self) -> int:
        return sum(self.lines.values())

    def _add(self, ev: Event) -> Event:
        ev.seq = len(self.events)
        self.events.append(ev)
        self.lines[self.kind] += ev.nlines
        return ev

    def emit(
        self,
        t: datetime,
        service: str,
        host: str,
        level: str,
        logger: str,
        ctx: Ctx,
        text: str,
        *,
        instance: str | None = None,
        trace: tuple[str, ...] = (),
        role: str | None = None,
    ) -> Event:
        if trace:  # traceback.print_exception ends with a newline: oslo prints one more, empty, prefixed line
            trace = (*trace, "")
        return self._add(Event(t, service, host, level, logger, ctx, text, instance, tuple(trace), role))

    def rabbit(self, t: datetime, level: str, erl: str, text: str, *, role: str | None = None) -> Event:
        """RabbitMQ 3.12 line body: ``[info] <0.1234.0> message``."""
        body = f"[{level}] {erl} {text}"
        return self._add(Event(t, "rabbitmq", "controller", _norm(level), "", NO_CTX, body, role=role, native=True))

    def mysql(self, t: datetime, thread: int, level: str, text: str, *, role: str | None = None) -> Event:
        """MariaDB error-log body: ``123 [Warning] message``."""
        body = f"{thread} [{level}] {text}"
        return self._add(Event(t, "mysql", "controller", _norm(level), "", NO_CTX, body, role=role, native=True))

    def libvirt(
        self, t: datetime, host: str, tid: int, level: str, where: str, text: str, *, role: str | None = None
    ) -> Event:
        """libvirtd body: ``12345: error : qemuMonitorIO:620 : message``."""
        body = f"{tid}: {level} : {where} : {text}"
        return self._add(Event(t, "libvirtd", host, _norm(level), "", NO_CTX, body, role=role, native=True))


def _norm(level: str) -> str:
    level = level.upper()
    return {"NOTE": "INFO", "NOTICE": "INFO"}.get(level, level)
