"""Wire types of the model routes: OpenAI's model list (with Nexa's extension fields), the
operator API that loads, unloads and lists loaded models, and the `keep_alive` a request may send."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..modalities import Capability, Modality
from .keep_alive import KeepAlive

CardState = Literal["loaded", "loading", "available", "failed"]


class ModelCard(BaseModel):
    """OpenAI's model object, with what Nexa adds: which service serves it, whether it is loaded, and
    what it can do."""

    id: str = Field(description="The name to pass as `model`.")
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the model was loaded, or became servable.")
    owned_by: str = "nexa"
    modality: Modality | None = Field(default=None, description="Which service serves the model.")
    backend: str | None = Field(default=None, description="Runtime behind the model (gguf, onnx, ct2, diffusers).")
    state: CardState | None = Field(default=None, description="Loaded, being loaded, servable on demand, or failed.")
    capabilities: list[Capability] = Field(default_factory=list, description="What the model can do.")
    aliases: list[str] = Field(default_factory=list, description="Other names `model` may use for it.")


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class LoadedModel(BaseModel):
    """A model that is loaded or loading, as the operator API lists it."""

    id: str
    modality: Modality
    state: CardState
    pinned: bool = Field(description="Never unloaded to make room nor when idle.")
    keep_alive_s: float | None = Field(description="Seconds it stays loaded once idle; null: for ever.")
    expires_at: float | None = Field(description="Unix time it will be unloaded if it stays idle; null: not planned.")
    memory_bytes: int = Field(description="Memory it takes: measured once loaded, estimated while loading.")
    active: int = Field(description="Requests it is serving.")
    queued: int = Field(description="Requests waiting for it (for a slot, or for its load).")
    loaded_at: int | None = Field(description="Unix time it was loaded.")


class LoadedModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[LoadedModel]


class LoadRequest(BaseModel):
    model: str = Field(min_length=1, max_length=512)
    pin: bool | None = Field(default=None, description="Keep it loaded until unloaded by the operator.")
    keep_alive: KeepAlive | None = None


class UnloadRequest(BaseModel):
    model: str = Field(min_length=1, max_length=512)


class UnloadResponse(BaseModel):
    id: str
    state: CardState = Field(description="`available` once unloaded; `loaded` while busy (it unloads when idle).")
    unloading: bool = Field(default=False, description="Busy now: it unloads as soon as its requests are done.")
