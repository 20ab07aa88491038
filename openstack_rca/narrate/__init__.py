"""narrate: the report in words — Claude when a key is configured, a deterministic offline narrative otherwise."""

from .claude import ClaudeNarrator, narrate
from .offline import offline_narrative

__all__ = ["ClaudeNarrator", "narrate", "offline_narrative"]
