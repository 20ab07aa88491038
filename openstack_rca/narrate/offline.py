"""The offline narrative: built from the report alone, the same words for the same report.

Used when no API key is configured, or when Claude is down, slow, rate-limited or answers badly: the operator
always gets an explanation that cites the evidence.
"""

from __future__ import annotations

from typing import Any

from ..diagnose.engine import NO_EVIDENCE


def _q(text: str, n: int = 140) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= n else text[: n - 1] + "…"


def offline_narrative(report: dict[str, Any]) -> dict[str, Any]:
    rc = report["root_cause"]
    ev = report.get("evidence", [])
    conf = float(rc.get("confidence") or 0.0)
    cites: list[str] = []
    if not ev or conf < NO_EVIDENCE or rc.get("component") is None:
        parts = [f"No evidence found in these logs for \"{_q(report['issue'], 100)}\" (confidence {conf:.2f})."]
        if ev:
            e = ev[0]
            parts.append(f"The most unusual line is [{e['id']}] from {e['service']} at {e['timestamp']}: "
                         f"\"{_q(e['text'])}\", but it does not match what the issue describes.")
            cites.append(e["id"])
        parts.append("Check that the logs cover the right hosts and time window, or describe the symptom "
                     "differently.")
        return {"text": " ".join(parts), "source": "offline", "citations": cites}
    first = ev[0]
    parts = [
        f"The earliest unexpected event is [{first['id']}]: {first['service']} logged {first['level'] or 'a line'} "
        f"at {first['timestamp']}: \"{_q(first['text'])}\".",
        f"This points at {rc['component']} ({rc['category'] or 'uncategorised'}) as the component at fault "
        f"(confidence {conf:.2f}).",
    ]
    cites.append(first["id"])
    follow = [e for e in ev[1:4]]
    if follow:
        said = "; ".join(f"[{e['id']}] {e['service']}: \"{_q(e['text'], 90)}\""
                         + (f" ({e['count']} times)" if e.get("count", 1) > 1 else "") for e in follow)
        parts.append(f"It was followed by {said}.")
        cites.extend(e["id"] for e in follow)
    aff = report.get("affected", {})
    n_i, n_r, svcs = len(aff.get("instances", [])), len(aff.get("requests", [])), aff.get("services", [])
    if n_i or n_r or svcs:
        parts.append(f"Affected: {n_i} instance(s), {n_r} request(s), across {', '.join(svcs[:8]) or 'no service'}.")
    parts.append(f"Start with {rc['component']} on the host in [{first['id']}] ({first['source']}, line "
                 f"{first['line_no']}).")
    return {"text": " ".join(parts), "source": "offline", "citations": cites}
