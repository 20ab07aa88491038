"""Citations: every [E<n>] in an answer must name evidence the report holds.

Unknown ids (the model invented them) are removed from the text and reported, so a reader never follows a
citation to nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CITE = re.compile(r"\[(E\d{1,3})\]")
# "[E1, E3]" and "[E1][E3]" are cited too; normalise the list form first
_LIST = re.compile(r"\[(E\d{1,3}(?:\s*,\s*E\d{1,3})+)\]")


@dataclass(frozen=True)
class Checked:
    text: str
    citations: list[str]  # valid ids, in order of first use
    invalid: list[str]  # ids the text cited that the evidence does not hold (removed from the text)


def check(text: str, valid_ids: set[str]) -> Checked:
    text = _LIST.sub(lambda m: "".join(f"[{x.strip()}]" for x in m.group(1).split(",")), text)
    cited: list[str] = []
    invalid: list[str] = []

    def keep(m: re.Match[str]) -> str:
        cid = m.group(1)
        if cid in valid_ids:
            if cid not in cited:
                cited.append(cid)
            return m.group(0)
        if cid not in invalid:
            invalid.append(cid)
        return ""

    out = CITE.sub(keep, text)
    out = re.sub(r"[ \t]+([.,;:])", r"\1", re.sub(r"[ \t]{2,}", " ", out)).strip()
    return Checked(out, cited, invalid)
