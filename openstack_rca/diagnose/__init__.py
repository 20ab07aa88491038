"""diagnose: ranked evidence, the root cause and its category, timeline and affected resources."""

from .categories import CATEGORIES, classify
from .engine import NO_EVIDENCE, Diagnosis, diagnose
from .issue import Issue, parse_issue

__all__ = ["CATEGORIES", "NO_EVIDENCE", "Diagnosis", "Issue", "classify", "diagnose", "parse_issue"]
