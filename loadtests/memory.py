"""The server's memory while locust runs: the resident set of `bentoml serve` and every worker it started,
sampled from /proc, so a soak can say whether memory grows with the requests served."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable, Iterable


def rss_mb(pids: Iterable[int]) -> float:
    """Summed VmRSS of the live processes among ``pids`` (MB)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        except (OSError, ValueError, IndexError):
            continue
    return round(total / 1024, 1)


class Sampler:
    """Every ``every`` seconds, the RSS of the processes ``pids()`` names, with the time since start."""

    def __init__(self, pids: Callable[[], Iterable[int]], every: float = 2.0):
        self.pids, self.every = pids, every
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._t0 = time.monotonic()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((round(time.monotonic() - self._t0, 1), rss_mb(self.pids())))
            self._stop.wait(self.every)

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.every + 1)

    def summary(self, skip_s: float = 0.0) -> dict:
        """Start, end, peak and growth of the samples taken after ``skip_s`` seconds (the ramp-up and setup are
        not the steady state); growth per minute is the slope from the first to the last of them."""
        kept = [s for s in self.samples if s[0] >= skip_s] or self.samples
        if not kept:
            return {"samples": 0}
        (t0, first), (t1, last) = kept[0], kept[-1]
        # one point a minute of the window: whether memory levels off (caches filling) or keeps climbing (a leak)
        by_minute = [m for t, m in kept if (t - t0) % 60 < self.every][:60]
        return {"samples": len(kept), "start_mb": first, "end_mb": last, "peak_mb": max(m for _, m in kept),
                "growth_mb": round(last - first, 1),
                "growth_mb_per_min": round((last - first) / ((t1 - t0) / 60), 1) if t1 > t0 else None,
                "by_minute_mb": by_minute}
