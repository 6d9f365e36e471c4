"""The image service's FastAPI app: `create_app()` builds it; the model loads in the background."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from nexa_common import catalogue
from nexa_common.admission import AdmissionQueue
from nexa_common.catalogue import Backend, CatalogueEntry, LocalSource, Modality, ModelError
from nexa_common.service import ModelStatus, add_model_routes, install_common, load_model

from .diffusers_engine import DiffusersEngine
from .generation import ImageService
from .metrics import ImageMetrics
from .outputs import OutputStore
from .routes import router
from .settings import Settings


def _model_status(settings: Settings) -> ModelStatus:
    """The configured model's status; a name that cannot be served is a failed status, not a crash."""
    try:
        entry = catalogue.find(settings.model)
    except ModelError as exc:
        status = ModelStatus(
            CatalogueEntry(
                settings.model, Modality.IMAGE, Backend.DIFFUSERS, LocalSource(Path(settings.model)), "unresolved"
            )
        )
        status.state, status.detail = "failed", str(exc)
        return status
    status = ModelStatus(entry)
    if entry.modality is not Modality.IMAGE:
        status.state, status.detail = "failed", f"'{entry.name}' is a {entry.modality} model, not an image model"
    return status


def _load(settings: Settings, name: str) -> DiffusersEngine:
    return DiffusersEngine.load(catalogue.resolve(name, settings.cache_dir), settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    status = _model_status(settings)
    admission = AdmissionQueue(settings.max_concurrency, settings.queue_size, settings.retry_after_s)
    store = OutputStore(
        settings.output_dir or settings.cache_dir / "image-outputs",
        settings.max_outputs_kept,
        settings.output_max_age_s,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async def load() -> None:
            if status.state == "loading":
                service.engine = await load_model(status, lambda: _load(settings, settings.model))

        store.prune()
        # In the background, so /health and /ready answer (503 "loading") while weights load.
        task = asyncio.create_task(load())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    app = FastAPI(
        title="nexa image service",
        version="0.1.0",
        description="Text-to-image and image-to-image with diffusers: the seed's /v1/txt2img and /v1/img2img, "
        "and OpenAI's /v1/images/generations.",
        lifespan=lifespan,
    )
    registry = install_common(app, "image")
    service = ImageService(status, admission, store, ImageMetrics(registry, admission))
    app.state.settings = settings
    app.state.image = service
    add_model_routes(app, lambda: status)
    app.include_router(router)
    return app
