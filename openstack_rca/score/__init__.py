"""score: which records matter — sessions, the template vocabulary, DeepLog windows (and, next, the models)."""

from .sessions import Sessions, build_sessions, session_keys
from .vocabulary import PAD, UNK, Vocabulary
from .windows import windows

__all__ = ["PAD", "UNK", "Sessions", "Vocabulary", "build_sessions", "session_keys", "windows"]
