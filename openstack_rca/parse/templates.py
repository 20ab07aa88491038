"""Template ids that never move, and the store that remembers every template seen.

An id is a hash of the template text, so the same line gets the same id in any process, on any machine, in any
order, with no shared state to coordinate between parser workers. The store only adds knowledge (text, counts,
first/last seen); it is what later becomes the model's vocabulary, and an id the model never saw stays a valid
id (the model maps it to "unknown").
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

STORE_VERSION = 1
UNKNOWN = "unknown"


def template_id(template: str) -> str:
    """48-bit BLAKE2b of the template text, hex: collisions stay improbable past millions of templates."""
    return hashlib.blake2b(template.encode("utf-8"), digest_size=6).hexdigest()


@dataclass
class TemplateInfo:
    template: str
    count: int = 0
    first_seen: str | None = None
    last_seen: str | None = None


class TemplateStore:
    """Persistent id -> template map, merged (not overwritten) on save so concurrent runs add up."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.templates: dict[str, TemplateInfo] = {}
        self._pending: dict[str, TemplateInfo] = {}
        self.load()

    def __contains__(self, tid: str) -> bool:
        return tid in self.templates

    def __len__(self) -> int:
        return len(self.templates)

    def get(self, tid: str) -> str | None:
        info = self.templates.get(tid)
        return info.template if info else None

    def load(self) -> None:
        self.templates = _read(self.path)

    def learn(self, counts: Mapping[str, tuple[str, int, str | None, str | None]]) -> int:
        """Add ``{id: (template, count, first_ts, last_ts)}``; return how many ids were new."""
        new = 0
        for tid, (tpl, n, first, last) in counts.items():
            for target in (self.templates, self._pending):
                info = target.get(tid)
                if info is None:
                    info = target[tid] = TemplateInfo(tpl)
                    if target is self.templates:
                        new += 1
                info.count += n
                info.first_seen = _min(info.first_seen, first)
                info.last_seen = _max(info.last_seen, last)
        return new

    def save(self) -> None:
        """Merge what this process learned into the file under an exclusive lock, atomically."""
        if not self._pending:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_suffix(".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk = _read(self.path)
            for tid, info in self._pending.items():
                cur = on_disk.get(tid)
                if cur is None:
                    on_disk[tid] = TemplateInfo(info.template, info.count, info.first_seen, info.last_seen)
                else:
                    cur.count += info.count
                    cur.first_seen = _min(cur.first_seen, info.first_seen)
                    cur.last_seen = _max(cur.last_seen, info.last_seen)
            payload = {
                "version": STORE_VERSION,
                "templates": {k: vars(v) for k, v in sorted(on_disk.items())},
            }
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".templates.")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, indent=1)
            os.replace(tmp, self.path)
            self.templates = on_disk
        self._pending.clear()

    def items(self) -> Iterable[tuple[str, TemplateInfo]]:
        return self.templates.items()


def _read(path: Path) -> dict[str, TemplateInfo]:
    if not path.is_file():
        return {}
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return {k: TemplateInfo(**v) for k, v in payload.get("templates", {}).items()}
    except (ValueError, TypeError) as exc:
        # A damaged store must not stop parsing: ids are content hashes, so nothing is lost but history.
        backup = path.with_suffix(".corrupt")
        os.replace(path, backup)
        import logging

        logging.getLogger(__name__).warning("template store %s unreadable (%s); moved to %s", path, exc, backup)
        return {}


def _min(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: str | None, b: str | None) -> str | None:
    return b if a is None else a if b is None else max(a, b)
