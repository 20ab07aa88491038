"""The line layouts OpenStack deployments produce, and how to recognise them.

Every layout's regex uses the same group names (``origin ts pid level comp ctx msg``); names a
layout lacks are appended as empty groups, so the parser reads any match with one ``m.group(*FIELDS)`` call and
no per-layout Python. ``origin`` names the emitting program when the line itself does (loghub's file-name prefix,
a journald unit). Journald lines carry no year; their layout has a ``fix`` that builds the ISO timestamp.
Detection is per file (best layout over a sample) with a per-line fallback to the others, so a mostly-oslo file
with a few stray message-only lines still parses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable, Optional

try:  # the C twin of the two oslo regexes below (see _speedups.c); None without a compiler at install time
    from ._speedups import parse_oslo as c_parse_oslo
except ImportError:
    c_parse_oslo = None

FIELDS = ("origin", "ts", "pid", "level", "comp", "ctx", "msg")

_LEVELS = "DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE|AUDIT"
# The oslo context bracket, captured whole and split by the parser (a regex that splits it costs 4x the match):
# "[req-R user project - - -]" (pre-Pike), "[None req-R user project - default default]", "[req-G req-R user …]"
# (global request id), DevStack's "[None req-R admin admin]", "[-]". Not an "[instance: …]" prefix: oslo's exception
# lines put that where the context goes.
_CTX = r"(?:\[(?!instance: )(?P<ctx>[^\]]*)\] ?)?"
_OSLO_TS = r"(?P<ts>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?)"

LEVEL_ALIASES = {
    "WARN": "WARNING", "FATAL": "CRITICAL", "AUDIT": "INFO", "NOTE": "INFO", "SYSTEM": "INFO", "NOTICE": "INFO",
    "ERR": "ERROR", "CRIT": "CRITICAL", "ALERT": "CRITICAL", "EMERG": "CRITICAL",
}
_MONTHS = {m: f"{i:02d}" for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(), 1)}


def level_of(text: Optional[str]) -> Optional[str]:
    if not text:
        return None
    up = text.upper()
    return LEVEL_ALIASES.get(up, up)


def iso(ts: Optional[str]) -> Optional[str]:
    """oslo/rabbit/libvirt stamps -> ISO 8601 (``T`` separator, ``.`` fraction, ``+HH:MM`` offset)."""
    if not ts:
        return None
    ts = ts.replace(" ", "T", 1).replace(",", ".")
    if len(ts) > 5 and ts[-5] in "+-" and ts[-3] != ":":  # +0000 -> +00:00
        ts = f"{ts[:-2]}:{ts[-2:]}"
    return ts


def _journal_ts(m: re.Match[str], year: int) -> str:
    return f"{year:04d}-{_MONTHS[m.group('mon')]}-{int(m.group('day')):02d}T{m.group('clock')}"


@dataclass(frozen=True)
class Layout:
    name: str
    pattern: str
    fix: Optional[Callable[[re.Match[str], int], str]] = None
    """Builds the timestamp when the line's own lacks a year."""
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    canonical: bool = field(init=False, repr=False, compare=False)
    """True when ``m.groups()`` is already ``FIELDS`` in order (the parser then skips the name lookups)."""

    def __post_init__(self) -> None:
        # A missing origin goes first (empty match at the start), other missing names last: for the oslo layouts
        # that makes the group order exactly FIELDS.
        pattern = self.pattern if "(?P<origin>" in self.pattern else "(?P<origin>)" + self.pattern
        pattern += "".join(f"(?P<{n}>)" for n in FIELDS if f"(?P<{n}>" not in pattern)
        regex = re.compile(pattern)
        object.__setattr__(self, "regex", regex)
        object.__setattr__(self, "canonical", tuple(regex.groupindex) == FIELDS)


LAYOUTS: tuple[Layout, ...] = (
    Layout("oslo", rf"{_OSLO_TS} (?P<pid>\d+) (?P<level>{_LEVELS}) (?P<comp>\S+) {_CTX}(?P<msg>.*)"),
    Layout(
        "oslo_prefixed",
        rf"(?P<origin>\S+\.log\S*) {_OSLO_TS} (?P<pid>\d+) (?P<level>{_LEVELS}) (?P<comp>\S+) {_CTX}(?P<msg>.*)",
    ),
    Layout(
        "journald",
        r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d(?:\.\d+)?) (?P<host>\S+) "
        rf"(?P<origin>[\w.@/-]+)\[(?P<pid>\d+)\]: (?P<level>{_LEVELS}) (?P<comp>\S+) {_CTX}(?P<msg>.*)",
        _journal_ts,
    ),
    Layout("message_only", rf"(?P<level>{_LEVELS}) (?P<comp>[a-z_][\w.]*) {_CTX}(?P<msg>.*)"),
    Layout(
        "rabbitmq",
        r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:?\d\d|Z)?) "
        r"\[(?P<level>debug|info|notice|warning|error|critical)\] <[\d.]+> ?(?P<msg>.*)(?P<comp>)",
    ),
    Layout(
        "mysql",
        r"(?P<ts>\d{4}-\d\d-\d\d +\d{1,2}:\d\d:\d\d) +(?P<pid>\d+) \[(?P<level>Note|Warning|ERROR|Error|System)\] "
        r"(?P<msg>.*)",
    ),
    Layout(
        "libvirt",
        r"(?P<ts>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d{4})?): (?P<pid>\d+): "
        r"(?P<level>debug|info|warning|error) : (?P<comp>[\w.]+)(?::\d+)? : (?P<msg>.*)",
    ),
    # Last resort for syslog/journald lines whose message is not oslo-formatted (libvirtd, ovs-vswitchd, …).
    Layout(
        "journald_plain",
        r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<clock>\d\d:\d\d:\d\d(?:\.\d+)?) (?P<host>\S+) "
        r"(?P<origin>[\w.@/-]+?)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)",
        _journal_ts,
    ),
)
BY_NAME = {layout.name: layout for layout in LAYOUTS}
# Components for layouts whose lines do not name a logger.
DEFAULT_COMPONENT = {"rabbitmq": "rabbitmq", "mysql": "mysqld"}

# Container runtime (CRI) wrapper used by kubelet for kolla/openstack-helm pods: the payload is one of the above.
CRI = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)) (stdout|stderr) ([FP]) ?(.*)")


def detect(sample: list[str]) -> tuple[bool, tuple[Layout, ...]]:
    """Pick the layout order for a file from a sample of its non-blank lines.

    Returns ``(is_cri, layouts)``: whether lines carry the CRI wrapper, and the layouts to try, best first.
    """
    lines = [s for s in sample if s.strip()]
    cri_hits = [m.group(4) for m in map(CRI.match, lines) if m]
    is_cri = bool(lines) and len(cri_hits) * 2 >= len(lines)
    if is_cri:
        lines = cri_hits
    scores = {layout.name: sum(1 for s in lines if layout.regex.match(s)) for layout in LAYOUTS}
    ranked = sorted(LAYOUTS, key=lambda lay: -scores[lay.name])  # stable: ties keep the declared order
    return is_cri, tuple(ranked)
