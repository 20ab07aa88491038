"""Where ingested corpora live. ``corpus.CorpusStore`` is the contract; ``LocalCorpusStore`` keeps them under
RCA_HOME on a POSIX filesystem (an object-store twin can implement the same five calls)."""

from .local import LocalCorpusStore

__all__ = ["LocalCorpusStore"]
