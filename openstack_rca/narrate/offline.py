"""The offline narrative: built from the report alone, the same words for the same report.

Used when no API key is configured, or when Claude is down, slow, rate-limited or answers badly: the operator
always gets an explanation that cites the evidence. It leads with the cause: the line that states it (the
exception and its message), where in the code it was raised, then the chain from it to what the user saw.
"""

from __future__ import annotations

import re
from typing import Any

from ..diagnose.engine import NO_EVIDENCE

MAX_STEPS = 5  # chain steps told after the cause; longer chains keep their first ones and the symptom
_API = re.compile(r"^(?P<op>.*?)\s*\bapi http (?P<status>\d{3})$")
_VERBS = ("attach", "detach", "create", "update", "delete", "get")
_UNFAMILIAR = re.compile(r"(\d+)% of these (?:records have templates|templates were) never seen in training")


def _q(text: str, n: int = 140) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def offline_narrative(report: dict[str, Any]) -> dict[str, Any]:
    rc = report["root_cause"]
    ev = report.get("evidence", [])
    conf = float(rc.get("confidence") or 0.0)
    if not ev or conf < NO_EVIDENCE or rc.get("component") is None:
        return _no_evidence(report, ev, conf)
    by_id = {e["id"]: e for e in ev}
    cause = by_id.get(rc.get("evidence_id")) or ev[0]
    cites = [cause["id"]]
    parts = [_cause_sentence(rc, cause),
             f"That makes {rc['component']} ({rc.get('category') or 'uncategorised'}) the component at fault "
             f"(confidence {conf:.2f})."]
    parts += _chain_sentences(rc.get("chain") or [], by_id, cites) or _followed_by(ev, cause, cites)
    parts += _affected_sentence(report.get("affected", {}))
    parts.append(_first_check(rc, cause))
    parts += [s for s in map(_warning_sentence, rc.get("warnings") or []) if s][:2]
    return {"text": " ".join(parts), "source": "offline", "citations": cites}


def _no_evidence(report: dict[str, Any], ev: list[dict[str, Any]], conf: float) -> dict[str, Any]:
    """Say plainly that the logs do not support the issue, rather than guess a cause."""
    cites: list[str] = []
    parts = [f"No evidence found in these logs for \"{_q(report['issue'], 100)}\" (confidence {conf:.2f})."]
    plain = [e for e in ev if not e.get("untrusted")]
    if plain:
        e = plain[0]
        parts.append(f"The most unusual line is [{e['id']}]{_from(e.get('service'))}{_at(e.get('timestamp'))}: "
                     f"\"{_q(e['text'])}\", but it does not match what the issue describes.")
        cites.append(e["id"])
    planted = [e["id"] for e in ev if e.get("untrusted")]
    if planted:
        one = len(planted) == 1
        parts.append(f"{_ids(planted)} "
                     + ("reads like instructions to an AI, not a log message, and was" if one else
                        "read like instructions to an AI, not log messages, and were") + " not taken as evidence.")
    parts.append("Check that the logs cover the right hosts and time window, or describe the symptom "
                 "differently.")
    return {"text": " ".join(parts), "source": "offline", "citations": cites}


def _ids(ids: list[str]) -> str:
    return ", ".join(f"[{i}]" for i in ids)


def _at(timestamp: str | None) -> str:
    """" at <time>", or nothing for logs without timestamps (line order stood in for time)."""
    return f" at {timestamp}" if timestamp else ""


def _from(service: str | None) -> str:
    return f" from {service}" if service else ""


def _cause_sentence(rc: dict[str, Any], cause: dict[str, Any]) -> str:
    """The quoted cause line first: it is what the operator greps for and what a fix has to address."""
    host = rc.get("host") or cause.get("host")
    service = rc.get("service") or cause.get("service") or "an unnamed service"
    s = (f"The root cause is [{cause['id']}]: {service}{f' on {host}' if host else ''} logged "
         f"\"{_q(rc.get('quote') or cause['text'], 200)}\"{_at(cause.get('timestamp'))}")
    where = _code_phrase(rc.get("code") or cause.get("code"))
    return f"{s}, {where}." if where else f"{s}."


def _code_loc(code: dict[str, Any] | None) -> str:
    """``module:function (line N)``, or as much of it as the traceback gave."""
    if not code:
        return ""
    module, func, line = code.get("module"), code.get("function"), code.get("line")
    loc = f"{module}:{func}" if module and func else (module or (f"{func}()" if func else ""))
    return f"{loc} (line {line})" if loc and line else loc


def _code_phrase(code: dict[str, Any] | None) -> str:
    exc, loc = (code or {}).get("exception"), _code_loc(code)
    if exc and loc:
        return f"a {exc} raised in {loc}"
    if exc:
        return f"a {exc}"
    return f"raised in {loc}" if loc else ""


def _chain_sentences(chain: list[dict[str, Any]], by_id: dict[str, Any], cites: list[str]) -> list[str]:
    """Walk the chain around the cause: what came just before it, then each step to what the user saw."""
    root_i = next((i for i, s in enumerate(chain) if s.get("root_cause")), -1)
    before, after = chain[:max(root_i, 0)], chain[root_i + 1:]
    out = []
    if before:
        out.append("Just before it, " + "; ".join(_step(s, by_id, cites) for s in before) + ".")
    if after:
        out.append(_after_sentence(after, by_id, cites))
    return out


def _after_sentence(after: list[dict[str, Any]], by_id: dict[str, Any], cites: list[str]) -> str:
    if len(after) == 1:
        return f"From there it reached what the user saw: {_step(after[0], by_id, cites)}."
    told, skipped = (after[:-1], 0) if len(after) <= MAX_STEPS else (after[:MAX_STEPS - 1], len(after) - MAX_STEPS)
    steps = [_step(s, by_id, cites) for s in told]
    if skipped:
        steps.append(f"{skipped} more step{'s' if skipped > 1 else ''}")
    return f"From there: {'; then '.join(steps)}; and finally {_step(after[-1], by_id, cites)}."


def _step(step: dict[str, Any], by_id: dict[str, Any], cites: list[str]) -> str:
    """One chain step in words, citing its evidence when the report holds it."""
    eid = step.get("evidence_id")
    cite = ""
    if eid in by_id:
        cite = f" [{eid}]"
        if eid not in cites:
            cites.append(eid)
    service = step.get("service") or "a service"
    if step.get("api"):
        return f"{_api_phrase(service, step['api'])}{cite}"
    return f"{service} logged {step.get('level') or 'a line'} \"{_q(step.get('text') or '', 200)}\"{cite}"


def _api_phrase(service: str, api: str) -> str:
    """``attach volume attachment api http 409`` -> ``nova-api answered HTTP 409 on attach volume``."""
    m = _API.match(api.strip())
    if m is None:
        return f"{service} failed a call ({api})"
    words = m.group("op").replace("get list show", "get").split()
    if len(words) >= 2 and words[0] in _VERBS:
        op = f"{words[0]} {words[1]}"
    elif len(words) >= 2 and words[0] == "action":
        op = f"a {words[1]} action"
    else:
        op = " ".join(words) or "a call"
    return f"{service} answered HTTP {m.group('status')} on {op.replace('_', ' ')}"


def _followed_by(ev: list[dict[str, Any]], cause: dict[str, Any], cites: list[str]) -> list[str]:
    """Without a chain, the next-ranked evidence is the best account of how the failure spread."""
    follow = [e for e in ev if e is not cause][:3]
    if not follow:
        return []
    said = "; ".join(f"[{e['id']}] {e.get('service') or 'a log'}: \"{_q(e['text'], 90)}\""
                     + (" (reads like instructions to an AI: shown as data)" if e.get("untrusted") else "")
                     + (f" ({e['count']} times)" if e.get("count", 1) > 1 else "") for e in follow)
    cites.extend(e["id"] for e in follow if e["id"] not in cites)
    return [f"It was followed by {said}."]


def _affected_sentence(aff: dict[str, Any]) -> list[str]:
    n_i, n_r, svcs = len(aff.get("instances", [])), len(aff.get("requests", [])), aff.get("services", [])
    if not (n_i or n_r or svcs):
        return []
    return [f"Affected: {n_i} instance(s), {n_r} request(s), across {', '.join(svcs[:8]) or 'no service'}."]


def _first_check(rc: dict[str, Any], cause: dict[str, Any]) -> str:
    """Point at the file and line (and the code) to open first."""
    host = rc.get("host") or cause.get("host")
    where = f"on {host}" if host else f"on the host in [{cause['id']}]"
    loc = _code_loc(rc.get("code") or cause.get("code"))
    code = f", and the code at {loc}" if loc else ""
    return f"Start with {rc['component']} {where} ({cause['source']}, line {cause['line_no']}){code}."


def _warning_sentence(warning: str) -> str:
    """An unfamiliar anomaly model weakens the evidence; say so in one short sentence."""
    m = _UNFAMILIAR.search(warning)
    if m:
        return (f"Note: the anomaly model was trained elsewhere ({m.group(1)}% of these log records are new to "
                "it), so its verdicts count for little here.")
    return f"Note: {_q(warning.split(':')[0], 120)}." if warning.strip() else ""
