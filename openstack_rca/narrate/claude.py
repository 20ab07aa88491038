"""The Claude narrator: the anthropic SDK, grounded on the report's evidence, never the report's single point
of failure.

The key comes only from ``ANTHROPIC_API_KEY`` and is never logged; ``ANTHROPIC_BASE_URL`` is honoured (a proxy,
or a test server). No key, a timeout, a 429/5xx the SDK's own retries did not cure, an empty or malformed
answer, or an answer that cites no evidence: the deterministic offline narrative is returned instead, with the
reason, so the report is never lost.
"""

from __future__ import annotations

import logging
import os
from typing import Any, Callable, Mapping

from ..config import NarrativeConfig
from . import citations, prompt
from .offline import offline_narrative

log = logging.getLogger(__name__)
TextFn = Callable[[str], None]


class ClaudeNarrator:
    def __init__(self, cfg: NarrativeConfig, env: Mapping[str, str] | None = None):
        env = os.environ if env is None else env
        self.cfg = cfg
        self._key = env.get("ANTHROPIC_API_KEY", "")
        self._base_url = env.get("ANTHROPIC_BASE_URL") or None
        self._client = None

    @property
    def available(self) -> bool:
        return self.cfg.enabled and bool(self._key)

    def _get_client(self):
        if self._client is None:
            import anthropic

            self._client = anthropic.Anthropic(api_key=self._key, base_url=self._base_url,
                                               timeout=self.cfg.timeout_s, max_retries=self.cfg.max_retries)
        return self._client

    def narrate(self, report: dict[str, Any], on_text: TextFn | None = None) -> dict[str, Any]:
        if not self.cfg.enabled:
            return _fallback(report, "narrative disabled (narrative.enabled = false)")
        if not self._key:
            return _fallback(report, None)  # the documented default without a key: no warning needed
        system, user = prompt.build(report)
        try:
            text = self._call(system, user, on_text)
        except Exception as exc:  # noqa: BLE001 - every SDK failure means the same: use the offline narrative
            return _fallback(report, f"Claude unavailable ({_describe(exc)})")
        if not text or not text.strip():
            return _fallback(report, "Claude returned no text")
        valid = {e["id"] for e in report.get("evidence", [])}
        checked = citations.check(text, valid)
        if not checked.citations:
            why = "Claude's answer cited no evidence" + (
                f" (only unknown ids: {', '.join(checked.invalid)})" if checked.invalid else "")
            return _fallback(report, why)
        out: dict[str, Any] = {"text": checked.text, "source": "claude", "citations": checked.citations,
                               "model": self.cfg.model}
        if checked.invalid:
            out["invalid_citations"] = checked.invalid
            out["warning"] = f"removed citations of evidence that does not exist: {', '.join(checked.invalid)}"
        return out

    def _call(self, system: str, user: str, on_text: TextFn | None) -> str:
        client = self._get_client()
        kwargs = dict(model=self.cfg.model, max_tokens=self.cfg.max_tokens, system=system,
                      messages=[{"role": "user", "content": user}])
        if on_text is None:
            msg = client.messages.create(**kwargs)
            return "".join(getattr(b, "text", "") for b in (msg.content or []) if getattr(b, "type", "") == "text")
        parts: list[str] = []
        with client.messages.stream(**kwargs) as stream:
            for chunk in stream.text_stream:
                parts.append(chunk)
                on_text(chunk)
        return "".join(parts)


def _describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    return f"{name}, HTTP {status}" if status else name


def _fallback(report: dict[str, Any], why: str | None) -> dict[str, Any]:
    out = offline_narrative(report)
    if why:
        out["warning"] = why
        log.warning("narrative: %s; using the offline narrative", why)
    return out


def narrate(report: dict[str, Any], cfg: NarrativeConfig, on_text: TextFn | None = None) -> dict[str, Any]:
    return ClaudeNarrator(cfg).narrate(report, on_text)
