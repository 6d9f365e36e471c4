"""Wire types every component answers: health and readiness (and the model list, from schemas.models)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from .models import ModelCard, ModelList

__all__ = ["Health", "ModelCard", "ModelList", "Readiness"]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "loading", "failed"]
    model: str | None = None
    detail: str | None = Field(default=None, description="Why the service is not ready, when it is not.")
    upstreams: dict[str, Readiness] | None = Field(
        default=None, description="The router's view of each configured service."
    )
