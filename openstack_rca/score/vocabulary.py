"""The template vocabulary: template id -> the integer the model sees.

0 is padding (no event before the session started) and 1 is "unknown" (a template the model never saw in
training); every other template seen at least ``min_count`` times gets its own index, most frequent first, so
the same corpus always gives the same vocabulary.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidInput

PAD = 0
UNK = 1
_RESERVED = 2


@dataclass
class Vocabulary:
    ids: list[str]  # index - 2 -> template id
    templates: dict[str, str] = field(default_factory=dict)  # template id -> text, for "expected instead" reports
    _index: dict[str, int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._index = {tid: i + _RESERVED for i, tid in enumerate(self.ids)}

    @classmethod
    def build(cls, template_ids: Iterable[str], templates: dict[str, str] | None = None, *,
              min_count: int = 1) -> "Vocabulary":
        if min_count < 1:
            raise InvalidInput(f"min_count must be >= 1 (got {min_count})")
        counts = Counter(template_ids)
        ids = [tid for tid, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) if n >= min_count]
        return cls(ids, {t: templates[t] for t in ids if templates and t in templates})

    def __len__(self) -> int:
        """Size of the model's output layer: the templates plus PAD and UNK."""
        return len(self.ids) + _RESERVED

    def index(self, template_id: str) -> int:
        return self._index.get(template_id, UNK)

    def encode(self, template_ids: Sequence[str]) -> np.ndarray:
        get = self._index.get
        return np.fromiter((get(t, UNK) for t in template_ids), dtype=np.int32, count=len(template_ids))

    def template_id(self, index: int) -> str | None:
        return self.ids[index - _RESERVED] if index >= _RESERVED else None

    def to_json(self) -> str:
        return json.dumps({"version": 1, "ids": self.ids, "templates": self.templates})

    @classmethod
    def from_json(cls, text: str) -> "Vocabulary":
        try:
            data = json.loads(text)
            return cls(list(data["ids"]), dict(data.get("templates", {})))
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInput(f"not a vocabulary file ({exc}); retrain with `rca train`") from None

    def save(self, path: Path) -> None:
        Path(path).write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> "Vocabulary":
        return cls.from_json(Path(path).read_text(encoding="utf-8"))
