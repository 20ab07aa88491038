"""The lexical (TF-IDF) signal: how much of what the issue is about a log line mentions.

A log line is long and an issue is short, so a symmetric cosine mostly measures the line's length. Instead the
issue's concepts (see ``issue.py``) are looked up in each line with the trained vectorizer's own tokenizer, and
the score is the IDF-weighted share of concepts the line mentions: 1.0 when it speaks of everything the operator
named, 0 when of nothing. Symptom concepts from the operator vocabulary weigh more than leftover single words.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .issue import Issue

LEFTOVER_WEIGHT = 0.5
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "s", "e")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately small stemmer: "services"/"service" -> "servic", "reporting" -> "report"."""
    word = word.lower()
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: -len(suf)]
    return word


def coverage(tfidf, issue: Issue, texts: list[str]) -> np.ndarray:
    if not texts or not issue.concepts:
        return np.zeros(len(texts))
    analyze = tfidf.build_analyzer()
    vocab = getattr(tfidf, "vocabulary_", {})
    idf = getattr(tfidf, "idf_", np.ones(1))
    rarest = float(idf.max()) if len(idf) else 1.0

    concepts: list[tuple[set[str], float]] = []
    for words in issue.concepts:
        forms = {stem(w) for w in words}
        # a concept is as telling as its rarest word; one the training logs never held counts as the rarest
        weight = max(float(idf[vocab[w]]) if w in vocab else rarest for w in words)
        concepts.append((forms, weight * (1.0 if len(words) > 1 else LEFTOVER_WEIGHT)))
    total = sum(w for _, w in concepts)
    out = np.zeros(len(texts))
    for i, text in enumerate(texts):
        toks = _stems(analyze, text)
        out[i] = sum(w for forms, w in concepts if forms & toks) / total
    return out


_STEMS: dict[str, frozenset[str]] = {}


def _stems(analyze, text: str) -> frozenset[str]:
    """Stemmed tokens of a template; templates recur across analyses, so each is tokenised once per process."""
    got = _STEMS.get(text)
    if got is None:
        if len(_STEMS) > 50_000:
            _STEMS.clear()
        got = _STEMS[text] = frozenset(stem(t) for t in analyze(text))
    return got
