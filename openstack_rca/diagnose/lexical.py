"""The lexical signal: how much of what the issue is about a piece of log text speaks of.

A log line is long and an issue is short, so a symmetric cosine mostly measures the line's length. Instead each
of the issue's concepts (see ``issue.py``) is looked up in the text's words, and the score is the weighted share
of concepts it mentions: 1.0 when it speaks of everything the operator named, 0 when of nothing. A concept
weighs as much as its rarest word is rare *in these logs* (a word every template holds tells nothing), so the
signal needs no trained vocabulary and works on logs from any deployment. When the issue names an operation
(create, delete, attach, …) and the text speaks of none of them, it is about another operation: the score is cut.

Words are identifiers as well as prose: ``_build_and_run_instance`` counts as itself and as build, run, instance.
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Iterable, Sequence

import numpy as np

from .issue import ACTION, WORD, Issue

LEFTOVER_WEIGHT = 0.5
OTHER_ACTION = 0.4  # the text is about some other operation than the one the issue names
_SUFFIXES = ("ations", "ation", "ings", "ing", "ers", "er", "ies", "es", "ed", "s", "e")
_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*[A-Za-z0-9]|\b[1-5]\d\d\b")


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """A deliberately small stemmer: "services"/"service" -> "servic", "reporting" -> "report"."""
    word = word.lower()
    for suf in _SUFFIXES:
        if word.endswith(suf) and len(word) - len(suf) >= 3:
            return word[: -len(suf)]
    return word


@lru_cache(maxsize=65536)
def words(text: str) -> frozenset[str]:
    """Stemmed words of a text: prose words, identifiers whole and split at ``_`` and camel case, HTTP codes."""
    out: set[str] = set()
    for w in _WORD.findall(text):
        if w.isdigit():
            out.add(w)
            continue
        out.add(stem(w))
        parts = [p for p in re.split(r"_|(?<=[a-z])(?=[A-Z])", w) if len(p) > 1]
        if len(parts) > 1:
            out.update(stem(p) for p in parts)
    return frozenset(out)


def bag(texts: Iterable[str]) -> frozenset[str]:
    out: set[str] = set()
    for t in texts:
        if t:
            out |= words(t[:2000])
    return frozenset(out)


def idf(corpus: Sequence[frozenset[str]]) -> tuple[dict[str, float], float]:
    """Inverse document frequency of each word over ``corpus`` (one bag per template), and the weight of a word
    that occurs in none of them."""
    n = max(len(corpus), 1)
    df: dict[str, int] = {}
    for b in corpus:
        for w in b:
            df[w] = df.get(w, 0) + 1
    unseen = math.log(1.0 + n)
    return {w: math.log(1.0 + n / c) for w, c in df.items()}, unseen


class Matcher:
    """The issue's concepts, weighted once for one corpus; ``score`` rates any bag of words against them."""

    def __init__(self, issue: Issue, corpus: Sequence[frozenset[str]]):
        weights, unseen = idf(corpus)
        self.concepts: list[tuple[frozenset[str], float, str]] = []
        for words_, kind in zip(issue.concepts, issue.kinds or (WORD,) * len(issue.concepts)):
            forms = frozenset(stem(w) if not w.isdigit() else w for w in words_)
            forms |= frozenset(p for w in words_ if "_" in w for p in words(w))
            weight = max(weights.get(f, unseen) for f in forms)
            self.concepts.append((forms, weight * (LEFTOVER_WEIGHT if kind == WORD else 1.0), kind))
        self.total = sum(w for _, w, _ in self.concepts)
        self.has_action = any(k == ACTION for _, _, k in self.concepts)

    def score(self, b: frozenset[str], actions: frozenset[str] | None = None) -> float:
        """``actions``: where the operation must be found, when not in ``b`` itself (the failing request's own
        words, while ``b`` also holds what followed it)."""
        if not self.concepts or self.total <= 0:
            return 0.0
        got = 0.0
        action = False
        for forms, w, kind in self.concepts:
            hit = forms & (b if actions is None or kind != ACTION else actions)
            if hit:
                got += w
                action = action or kind == ACTION
        s = got / self.total
        if self.has_action and not action:
            s *= OTHER_ACTION
        return s

    def scores(self, bags: Sequence[frozenset[str]]) -> np.ndarray:
        return np.array([self.score(b) for b in bags], dtype=float)


def coverage(issue: Issue, texts: list[str]) -> np.ndarray:
    """Each text's relevance to the issue, with word weights from the texts themselves."""
    if not texts or not issue.concepts:
        return np.zeros(len(texts))
    bags = [words(t[:2000]) for t in texts]
    return Matcher(issue, bags).scores(bags)
