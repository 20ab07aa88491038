"""Request bodies of the HTTP API, validated before BentoML sees them (so every bad request is a 422 with a
message, in one shape: ``{"error": "...", "detail": [...]}``)."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AnalyzeRequest(_Strict):
    issue: str = Field(min_length=1, max_length=2000, description="what the operator sees")
    logs: Optional[str] = Field(None, description="log text (one or more services' lines)")
    corpus: Optional[str] = Field(None, description="an ingested corpus instead of logs")
    mode: Optional[Literal["hybrid", "fast"]] = None
    top_k: Optional[int] = Field(None, ge=1, le=100)
    narrate: bool = True

    @model_validator(mode="after")
    def _one_source(self) -> "AnalyzeRequest":
        if (self.logs is None) == (self.corpus is None):
            raise ValueError("give exactly one of `logs` (log text) or `corpus` (an ingested corpus name)")
        return self


class ScoreRequest(_Strict):
    lines: list[str] = Field(min_length=1, description="log lines of one request, in order")


class IngestRequest(_Strict):
    corpus: str = Field(min_length=1, max_length=101)
    logs: str = Field(min_length=1)
    index: bool = True


ROUTES = {"/analyze": AnalyzeRequest, "/score": ScoreRequest, "/ingest": IngestRequest}
