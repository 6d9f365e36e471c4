"""The embedding model the text service hosts beside its chat model (NEXA_TEXT_EMBEDDING_MODEL),
loaded in the background at start when it is present, else on the first request that needs it.

Which model a request names decides the route it belongs on: an embedding model on a generation
route, or a generation model on /v1/embeddings, is a 400 `model_wrong_route` naming the right one.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from prometheus_client import CollectorRegistry

from nexa_common import catalogue
from nexa_common.catalogue import Capability, CatalogueEntry, Modality, ModelError, ModelNotAvailable
from nexa_common.errors import APIError
from nexa_common.schemas.common import ModelCard

from .embedding_batcher import Arrivals, EmbeddingBatcher, EmbeddingMetrics
from .settings import Settings

if TYPE_CHECKING:
    from .embedding_engine import EmbeddingEngine

log = logging.getLogger("nexa.text.embeddings")
_BACKEND_PACKAGES = ("onnxruntime", "tokenizers")  # the `embeddings` extra

# What each other kind of model is for, and where it is served (for `model_wrong_route`).
_ROUTES = {
    Modality.TEXT: ("a text generation model", "/v1/chat/completions or /v1/completions"),
    Modality.AUDIO: ("an audio transcription model", "/v1/audio/transcriptions"),
    Modality.IMAGE: ("an image generation model", "/v1/images/generations"),
}


def wrong_route(name: str, entry: CatalogueEntry) -> APIError:
    what, route = ("an embedding model", "/v1/embeddings") if entry.embeddings else _ROUTES[entry.modality]
    return APIError(400, f"'{name}' is {what}; use {route}.", param="model", code="model_wrong_route")


def reject_embedding_model(model: str | None) -> None:
    """For the generation routes: a request naming an embedding model is on the wrong route."""
    if model:
        entry = catalogue.lookup(model)
        if entry is not None and entry.embeddings:
            raise wrong_route(model, entry)


def _display_name(source: str) -> str:
    if not source:
        return ""
    try:
        return catalogue.find(source).name
    except ModelError:
        return Path(source).name or source


class EmbeddingModel:
    """One embedding model: its state for `/v1/models`, and its batcher once loaded."""

    def __init__(self, settings: Settings, registry: CollectorRegistry) -> None:
        self.source = settings.embedding_model
        """The setting: a catalogue name or a folder's path."""
        self.name = _display_name(self.source)
        """What requests name it by and answers call it: the catalogue name, or the folder's name."""
        self.settings = settings
        self._metrics = EmbeddingMetrics(registry) if self.name else None
        self.state: Literal["loaded", "loading", "available", "failed"] = "available"
        self.detail: str | None = None
        self.loaded_at = int(time.time())
        self.arrivals = Arrivals()
        self._batcher: EmbeddingBatcher | None = None
        self._loading: asyncio.Task[EmbeddingBatcher] | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.name)

    async def preload(self) -> None:
        """Load now if the model is on this machine; a missing model waits for its first request."""
        if not self.enabled:
            return
        try:
            catalogue.resolve(self.source, self.settings.cache_dir)
        except ModelError as exc:
            log.info("embedding model %s is not loaded at start: %s", self.name, exc)
            return
        with contextlib.suppress(APIError):  # the state and reason are kept; requests report them
            await self.batcher()

    async def batcher(self) -> EmbeddingBatcher:
        """The loaded model's batcher; loads it first if needed (concurrent callers share one load)."""
        if self._batcher is not None:
            return self._batcher
        if self.state == "failed":
            raise APIError(503, f"Embedding model '{self.name}' failed to load: {self.detail}", code="model_failed")
        if self._loading is None:
            self._loading = asyncio.create_task(self._load())
        loading = self._loading
        try:
            # Shielded: a caller that gives up (client gone) does not cancel the others' load.
            return await asyncio.shield(loading)
        finally:
            if loading.done() and self._loading is loading:
                self._loading = None  # a load that failed for want of the model is tried again next time

    async def _load(self) -> EmbeddingBatcher:
        missing = [name for name in _BACKEND_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            # The container images carry no ONNX Runtime (as for ONNX text models): local mode has it.
            self.state = "failed"
            self.detail = (
                f"the embeddings backend is not installed here ({', '.join(missing)} missing): "
                f"pip install 'nexa-text[embeddings]', or serve embeddings in local mode (`nexa server --local`)"
            )
            raise APIError(503, f"Embedding model '{self.name}' cannot be served: {self.detail}.", code="model_failed")
        try:
            resolved = catalogue.resolve(self.source, self.settings.cache_dir)
        except ModelNotAvailable as exc:
            # Not an error of the model: it can still be pulled, and the next request will find it.
            raise APIError(404, str(exc), param="model", code="model_not_pulled") from exc
        except ModelError as exc:
            self.state, self.detail = "failed", str(exc)
            raise APIError(503, f"Embedding model '{self.name}' cannot be served: {exc}", code="model_failed") from exc
        if not resolved.entry.embeddings:
            self.state, self.detail = "failed", f"'{self.name}' is not an embedding model"
            raise APIError(503, f"NEXA_TEXT_EMBEDDING_MODEL names {self.detail}.", code="model_failed")
        self.state = "loading"
        started = time.perf_counter()
        try:
            engine = await asyncio.to_thread(self._open, resolved.path)
        except Exception as exc:  # the reason goes to /v1/models and to each request; the service stays up
            self.state, self.detail = "failed", f"{type(exc).__name__}: {exc}"
            log.error("embedding model %s failed to load: %s", self.name, self.detail)
            raise APIError(503, f"Embedding model '{self.name}' failed to load: {exc}", code="model_failed") from exc
        assert self._metrics is not None
        s = self.settings
        self._batcher = EmbeddingBatcher(
            engine,
            self._metrics,
            max_batch=s.embedding_max_batch,
            wait_s=s.embedding_batch_wait_ms / 1000,
            queue_size=s.embedding_queue_size,
            arrivals=self.arrivals,
        )
        self.state, self.detail, self.loaded_at = "loaded", None, int(time.time())
        log.info("embedding model %s loaded in %.2f s", self.name, time.perf_counter() - started)
        return self._batcher

    def _open(self, path: Path) -> EmbeddingEngine:
        from .embedding_engine import EmbeddingEngine  # needs the optional backend, checked in _load

        s = self.settings
        return EmbeddingEngine(path, n_threads=s.threads, batch_size=s.embedding_max_batch)

    def card(self) -> ModelCard | None:
        if not self.enabled:
            return None
        return ModelCard(
            id=self.name, created=self.loaded_at, modality=Modality.TEXT, backend="onnx", capabilities=[Capability.EMBEDDINGS.value],
            state=self.state,
        )  # fmt: skip

    async def close(self) -> None:
        if self._loading is not None:
            await asyncio.gather(self._loading, return_exceptions=True)
        if self._batcher is not None:
            await self._batcher.close()
            self._batcher = None
