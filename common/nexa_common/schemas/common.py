"""Wire types every component answers: model lists, health and readiness."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..modalities import Modality


class ModelCard(BaseModel):
    id: str = Field(description="The name to pass as `model`.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the service loaded the model.")
    owned_by: str = "nexa"
    modality: Modality | None = Field(default=None, description="Which service serves the model.")
    backend: str | None = Field(default=None, description="Runtime behind the model (gguf, onnx, ct2, diffusers).")
    capabilities: list[str] | None = Field(default=None, description="What the model serves (e.g. `embeddings`).")
    state: Literal["loaded", "loading", "available", "failed"] | None = Field(
        default=None, description="Whether the model is in memory, being loaded, on disk only, or failed to load."
    )


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    status: Literal["ready", "loading", "failed"]
    model: str | None = None
    detail: str | None = Field(default=None, description="Why the service is not ready, when it is not.")
    upstreams: dict[str, Readiness] | None = Field(
        default=None, description="The router's view of each configured service."
    )
