"""How much the serving image carries, before and after TensorFlow left it: the installed size of each Bento's
Python dependency closure, measured on this venv (there is no Docker engine here to `bentoml containerize`).

    python benchmarks/image_size.py [--top 12]

For bentos/requirements.txt (serving) and bentos/requirements-train.txt (training = the serving image before
this split) it resolves every pin's dependency closure through the installed packages' metadata (markers
evaluated, extras followed) and sums the files each distribution installed (its RECORD). The base image and
the system packages are the same for both and not counted.
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _dists() -> dict[str, metadata.Distribution]:
    return {_norm(d.metadata["Name"]): d for d in metadata.distributions()}


def closure(pins: list[str], dists: dict[str, metadata.Distribution]) -> tuple[set[str], list[str]]:
    """Installed distributions the pins pull in, and the pins this venv lacks."""
    seen: set[str] = set()
    missing: list[str] = []
    todo = [(Requirement(p), frozenset()) for p in pins]
    while todo:
        req, _ = todo.pop()
        name = _norm(req.name)
        if name not in dists:
            missing.append(req.name)
            continue
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        for dep in dists[name].requires or []:
            r = Requirement(dep)
            envs = [{"extra": e} for e in (req.extras or {""})]
            if r.marker is None or any(r.marker.evaluate(e) for e in envs):
                todo.append((r, frozenset(r.extras)))
    return {k.split("[")[0] for k in seen}, sorted(set(missing))


def size_of(dist: metadata.Distribution) -> int:
    total = 0
    for f in dist.files or []:
        try:
            total += dist.locate_file(f).stat().st_size
        except OSError:
            pass
    return total


def pins(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--top", type=int, default=10, help="largest distributions to list per image")
    args = ap.parse_args()
    dists = _dists()
    sizes = {}
    for label, name in (("serving (bentos/requirements.txt)", "requirements.txt"),
                        ("training (bentos/requirements-train.txt)", "requirements-train.txt")):
        names, missing = closure(pins(ROOT / "bentos" / name), dists)
        per = sorted(((size_of(dists[n]), n) for n in names), reverse=True)
        total = sum(s for s, _ in per)
        sizes[name] = total
        print(f"{label}: {len(names)} distributions, {total / 2**20:,.0f} MiB installed"
              + (f" (not installed here, not counted: {', '.join(missing)})" if missing else ""))
        for s, n in per[: args.top]:
            print(f"  {s / 2**20:8,.0f} MiB  {n}")
    saved = sizes["requirements-train.txt"] - sizes["requirements.txt"]
    print(f"TensorFlow out of the serving image: {saved / 2**20:,.0f} MiB less "
          f"({saved / sizes['requirements-train.txt']:.0%} of the training image's packages)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
