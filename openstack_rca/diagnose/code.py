"""Where in the code: the module, file, function and line a record points at, and the exception it carries.

Three sources, most precise first:

* a traceback joined to the record (oslo prints one under the record that logged it; a ``RemoteError`` carries
  the remote side's as a Python list repr): the deepest frame inside an OpenStack service package is where the
  failure was raised, not where it was caught;
* oslo's DEBUG suffix,
  ``… _choose_top_backend /usr/lib/python2.7/site-packages/cinder/scheduler/filter_scheduler.py:300``;
* the logger name, ``cinder.scheduler.flows.create_volume`` -> ``cinder/scheduler/flows/create_volume.py``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Optional

# Service packages: a frame inside one of these is "our" code. Libraries (oslo_*, taskflow, sqlalchemy, eventlet)
# carry the failure but rarely cause it, so they are used only when no service frame exists.
SERVICE_PACKAGES = frozenset((
    "nova", "neutron", "cinder", "glance", "keystone", "placement", "heat", "swift", "ironic", "octavia",
    "designate", "barbican", "manila", "magnum", "aodh", "ceilometer", "gnocchi", "masakari", "horizon",
    "neutron_lib", "os_brick", "os_vif", "glance_store", "networking_ovn", "ovn_octavia_provider",
))
LIBRARY_PREFIXES = ("oslo_", "oslo.", "keystoneauth1", "keystonemiddleware", "taskflow", "osprofiler", "ovsdbapp")

_FRAME = re.compile(r'File "(?P<path>[^"]+\.py)", line (?P<line>\d+), in (?P<func>[\w<>]+)')
_SOURCE_SUFFIX = re.compile(r"(?P<func>[\w<>]+) (?P<path>/\S+\.py):(?P<line>\d+)\s*$")
_SITE = re.compile(r"(?:site|dist)-packages/|/opt/stack/[^/]+/|/usr/lib/python[\d.]+/")
_EXC_NAME = re.compile(r"^(?:[\w.]+\.)?(?P<name>[A-Z]\w*(?:Error|Exception|Failure|Fault|Timeout|Exit|Found|Invalid"
                       r"|Conflict|Denied|Unavailable|Interrupt)?\w*)(?::|$)")


@dataclass(frozen=True)
class Frame:
    module: str  # package-relative path: nova/compute/manager.py
    function: str
    line: int

    @property
    def package(self) -> str:
        return self.module.split("/", 1)[0]


@dataclass(frozen=True)
class CodeLocation:
    module: Optional[str]  # nova/compute/manager.py
    function: Optional[str]
    line: Optional[int]
    exception: Optional[str]  # the exception class, e.g. TypeError or nova.exception.InstanceDeployFailure
    source: str  # traceback | debug-suffix | logger

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def relative_module(path: str) -> Optional[str]:
    """``/usr/lib/python2.7/site-packages/nova/compute/manager.py`` -> ``nova/compute/manager.py``."""
    m = None
    for m in _SITE.finditer(path):
        pass
    rel = path[m.end():] if m else path.lstrip("/")
    return rel or None


def frames(raw: str) -> list[Frame]:
    """Every ``File "…", line N, in f`` frame in the record's text, outermost first (as Python prints them)."""
    if 'File "' not in raw:
        return []
    out = []
    for m in _FRAME.finditer(raw.replace("\\n", "\n")):
        rel = relative_module(m.group("path"))
        if rel:
            out.append(Frame(rel, m.group("func"), int(m.group("line"))))
    return out


def is_service_module(module: str) -> bool:
    return module.split("/", 1)[0] in SERVICE_PACKAGES


def logger_module(logger: Optional[str]) -> Optional[str]:
    """The module a logger name stands for, when it names one of the service packages."""
    if not logger or "." not in logger or logger.split(".", 1)[0] not in SERVICE_PACKAGES:
        return None
    return logger.replace(".", "/") + ".py"


def exception_class(exception: Optional[str]) -> Optional[str]:
    """``TypeError: consume_from_volume() takes…`` -> ``TypeError``; None when the line is not an exception."""
    if not exception:
        return None
    head = exception.split(":", 1)[0].strip()
    if not head or " " in head or not re.fullmatch(r"[\w.]+", head):
        return None
    return head


@lru_cache(maxsize=4096)
def _suffix(message: str) -> Optional[tuple[str, str, int]]:
    m = _SOURCE_SUFFIX.search(message[-400:])
    if not m:
        return None
    rel = relative_module(m.group("path"))
    return (rel, m.group("func"), int(m.group("line"))) if rel else None


def locate(raw: str, message: str, logger: Optional[str], exception: Optional[str]) -> Optional[CodeLocation]:
    """Where the record points in the code, or None when nothing names a service module."""
    exc = exception_class(exception)
    fr = frames(raw)
    if fr:
        own = [f for f in fr if is_service_module(f.module)]
        deepest = (own or fr)[-1]
        return CodeLocation(deepest.module, deepest.function, deepest.line, exc, "traceback")
    hit = _suffix(message) if message else None
    if hit:
        return CodeLocation(hit[0], hit[1], hit[2], exc, "debug-suffix")
    mod = logger_module(logger)
    if mod:
        return CodeLocation(mod, None, None, exc, "logger")
    return None


def modules_named(raw: str, message: str, logger: Optional[str]) -> set[str]:
    """Every module the record names: its logger's module, its DEBUG suffix, each traceback frame."""
    out = {f.module for f in frames(raw)}
    hit = _suffix(message) if message else None
    if hit:
        out.add(hit[0])
    mod = logger_module(logger)
    if mod:
        out.add(mod)
    return out
