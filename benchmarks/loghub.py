"""Shared helpers for the benchmarks: locate the loghub sample, build Drain3 the way the field benchmarks it,
and scale the 2k sample into a large corpus with no repeated line.

loghub: Jieming Zhu, Shilin He, Pinjia He, Jinyang Liu, Michael R. Lyu. "Loghub: A Large Collection of System Log
Datasets for AI-driven Log Analytics", ISSRE 2023. https://github.com/logpai/loghub — the data is read from
``../shared/data/loghub`` (override with ``RCA_LOGHUB_DIR``) and never copied into this repository.
"""

from __future__ import annotations

import csv
import os
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOGHUB = Path(os.environ.get("RCA_LOGHUB_DIR", ROOT.parent / "shared" / "data" / "loghub"))
LOG = LOGHUB / "OpenStack_2k.log"
STRUCTURED = LOGHUB / "OpenStack_2k.log_structured.csv"


def require_loghub() -> None:
    if not (LOG.is_file() and STRUCTURED.is_file()):
        sys.exit(f"loghub OpenStack_2k not found under {LOGHUB}; set RCA_LOGHUB_DIR to the folder that holds it")


def ground_truth() -> list[dict]:
    with open(STRUCTURED, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


# The loghub benchmark's Drain settings for OpenStack (depth 5, similarity 0.5, these three regexes) ...
BENCHMARK_MASKS = [r"((\d+\.){3}\d+,?)+", r"/.+?\s", r"\d+"]
# ... and the same with UUID and hex-id masks in front, which an operator would add for OpenStack.
UUID_HEX_MASKS = [
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    r"\b[0-9a-fA-F]{32}\b",
    r"\b0x[0-9a-fA-F]+\b",
] + BENCHMARK_MASKS


def drain3_miner(masks: list[str]):
    from drain3 import TemplateMiner
    from drain3.masking import MaskingInstruction
    from drain3.template_miner_config import TemplateMinerConfig

    cfg = TemplateMinerConfig()
    cfg.profiling_enabled = False
    cfg.drain_depth = 5
    cfg.drain_sim_th = 0.5
    cfg.mask_prefix = "<"
    cfg.mask_suffix = ">"
    cfg.masking_instructions = [MaskingInstruction(p, "*") for p in masks]
    return TemplateMiner(config=cfg)


_IDS = re.compile(
    r"(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r"|(?P<hex>\b[0-9a-f]{32}\b)"
    r"|(?P<num>(?<![\w/.])\d+(?:\.\d+)?(?![\w.]*/))"
)


def scaled_corpus(copies: int, seed: int = 0) -> list[str]:
    """``copies`` × the 2k sample; each copy gets fresh UUIDs, request ids, hex ids and numbers (consistently
    within the copy, as a real day of logs would), so no line repeats and caches cannot help."""
    base = LOG.read_text(encoding="utf-8").split("\n")
    if base and base[-1] == "":
        base.pop()
    rng = random.Random(seed)
    out: list[str] = []
    for _ in range(copies):
        mapping: dict[str, str] = {}

        def fresh(m: re.Match[str]) -> str:
            s = m.group(0)
            if s not in mapping:
                if m.group("uuid"):
                    h = f"{rng.getrandbits(128):032x}"
                    mapping[s] = f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
                elif m.group("hex"):
                    mapping[s] = f"{rng.getrandbits(128):032x}"
                elif "." in s:
                    a, b = s.split(".", 1)
                    mapping[s] = f"{rng.randrange(10 ** len(a))}.{rng.randrange(10 ** len(b)):0{len(b)}d}"
                else:
                    mapping[s] = str(rng.randrange(10 ** max(len(s) - 1, 0), 10 ** len(s)))
            return mapping[s]

        for line in base:
            prefix, _, rest = line.partition(" ")  # keep loghub's file-name column intact
            ts = rest[:23]
            out.append(f"{prefix} {ts}{_IDS.sub(fresh, rest[23:])}")
    return out
