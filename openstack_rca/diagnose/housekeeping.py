"""What a record says about itself before any model looks at it: housekeeping, trouble, or a failure.

* Housekeeping: deprecation and configuration-option warnings (services print them at every start), image-cache
  bookkeeping ("Unknown base file"), periodic-task and privsep chatter. They are WARNING or INFO, carry no
  exception, and are never a root cause unless the issue names them.
* Trouble: an INFO line that says something went wrong in words ("Got no allocation candidates", "no response to
  inactivity probe … disconnecting"). Not an error by its level, but more than routine.
* A traceback or an exception makes a record an error whatever its level: oslo prints the traceback of a
  ``LOG.warning(…, exc_info=True)`` under the warning.

The rules read the message and the logger; they name kinds of lines, never one deployment's strings.
"""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from ..score.anomaly import SEVERITY, UNPARSED_SEVERITY

_HOUSEKEEPING = re.compile(
    r"deprecat|obsolet|will be removed|removed in (?:a |the )?(?:future|next)|future release"
    r"|please (?:update|use|upgrade|migrate|switch|set|consider)|option [\"'][\w.-]+[\"'] from group"
    r"|(?:config(?:uration)?|conf) option|is not (?:a )?(?:valid|known|recognized) option|backwards? compatib"
    r"|unknown base file|removable base files|active base files|base or swap file|image cache"
    r"|running periodic task|periodic task|updating bandwidth usage cache|running privsep helper"
    r"|privsep (?:daemon|process)|spawned new privsep",
    re.I,
)
_HOUSEKEEPING_LOGGERS = ("oslo_config.cfg", "oslo_log.versionutils", "py.warnings", "oslo_policy.policy")
_TROUBLE = re.compile(
    r"\b(?:fail(?:s|ed|ure|ing)?|errors?|unable|cannot|can't|could not|couldn't|refused|denied|timed? ?out"
    r"|timeout|no response|not found|insufficient|exceeded|exhausted|unreachable|lost|disconnect(?:ed|ing)?"
    r"|abort(?:ed|ing)?|reject(?:ed)?|invalid|exception|killed|crash(?:ed)?|dead|no valid host"
    r"|no allocation candidates|no space|out of memory|corrupt(?:ed)?|missing|conflict|panic|fatal"
    r"|terminating on signal|unexpected(?:ly)?)\b",
    re.I,
)
TRACEBACK = "Traceback (most recent call last)"
TRACEBACK_SEVERITY = SEVERITY["ERROR"]
TROUBLE_SEVERITY = 0.45


@lru_cache(maxsize=65536)
def is_housekeeping(message: str | None, logger: str | None) -> bool:
    """A line that is routine by what it says (a deprecation, a config option, cache bookkeeping)."""
    if logger and logger.startswith(_HOUSEKEEPING_LOGGERS):
        return True
    return bool(message and _HOUSEKEEPING.search(message[:600]))


@lru_cache(maxsize=65536)
def says_trouble(message: str | None) -> bool:
    return bool(message and _TROUBLE.search(message[:600]))


def level_severity(levels: list) -> np.ndarray:
    return np.array([SEVERITY.get(lv, UNPARSED_SEVERITY) if lv else UNPARSED_SEVERITY for lv in levels])


def adjust(sev: np.ndarray, has_traceback: np.ndarray, trouble: np.ndarray) -> np.ndarray:
    """The level's severity raised to ERROR by a traceback, and above INFO by words of trouble."""
    sev = np.where(has_traceback, np.maximum(sev, TRACEBACK_SEVERITY), sev)
    routine = (sev <= SEVERITY["INFO"]) & (sev > SEVERITY["DEBUG"])
    return np.where(routine & trouble, TROUBLE_SEVERITY, sev)
