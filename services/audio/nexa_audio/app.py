"""The audio service's FastAPI app: model loading in the lifespan, state on `app.state`."""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from nexa_common.admission import AdmissionQueue
from nexa_common.catalogue import Backend, CatalogueEntry, LocalSource, Modality, ModelError, find, resolve
from nexa_common.service import ModelStatus, add_model_routes, install_common, load_model

from .engine import WhisperEngine
from .metrics import AudioMetrics
from .routes import router
from .settings import Settings
from .state import AudioState

log = logging.getLogger("nexa.audio")


def _resolve(settings: Settings) -> tuple[ModelStatus, Path | None]:
    try:
        entry: CatalogueEntry = find(settings.model)
    except ModelError as exc:
        unknown = CatalogueEntry(settings.model, Modality.AUDIO, Backend.CT2, LocalSource(Path(settings.model)), "")
        return _failed(ModelStatus(unknown), str(exc)), None
    status = ModelStatus(entry)
    if entry.modality is not Modality.AUDIO or entry.backend is not Backend.CT2:
        return _failed(status, f"'{entry.name}' is a {entry.modality} model, not a CTranslate2 Whisper model."), None
    try:
        return status, resolve(settings.model, settings.cache_dir).path
    except ModelError as exc:
        return _failed(status, str(exc)), None


def _failed(status: ModelStatus, reason: str) -> ModelStatus:
    status.state, status.detail = "failed", reason
    log.error("cannot serve model %s: %s", status.entry.name, reason)
    return status


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state: AudioState = app.state.audio
        # 0700 and unique: uploads are never where another process or request could read them.
        state.upload_dir = Path(tempfile.mkdtemp(prefix="nexa-audio-", dir=settings.tmp_dir))
        try:
            state.status, model_dir = _resolve(settings)
            if model_dir is not None:
                state.engine = await load_model(state.status, lambda: WhisperEngine(model_dir, settings))
            yield
        finally:
            shutil.rmtree(state.upload_dir, ignore_errors=True)

    app = FastAPI(
        title="nexa audio service",
        description="OpenAI-compatible speech to text with faster-whisper.",
        version="0.1.0",
        lifespan=lifespan,
    )
    registry = install_common(app, "audio")
    queue = AdmissionQueue(settings.max_concurrency, settings.queue_size, settings.retry_after_s)
    app.state.audio = AudioState(settings, queue, AudioMetrics(registry, queue))
    add_model_routes(app, lambda: app.state.audio.status)
    app.include_router(router)
    return app
