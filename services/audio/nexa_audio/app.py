"""The audio service's FastAPI app: the Whisper model and the Piper voice loaded in the lifespan, state on
`app.state`."""

from __future__ import annotations

import asyncio
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
from .speech.engine import PiperEngine
from .speech.routes import router as speech_router
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


def _resolve_voice(settings: Settings) -> tuple[ModelStatus | None, Path | None]:
    """The voice of /v1/audio/speech (NEXA_AUDIO_SPEECH_MODEL); None when speech is switched off."""
    if not settings.speech_model:
        return None, None
    try:
        entry = find(settings.speech_model)
    except ModelError as exc:
        unknown = CatalogueEntry(
            settings.speech_model, Modality.AUDIO, Backend.PIPER, LocalSource(Path(settings.speech_model)), ""
        )
        return _failed(ModelStatus(unknown), str(exc)), None
    status = ModelStatus(entry)
    if entry.backend is not Backend.PIPER:
        return _failed(status, f"'{entry.name}' is a {entry.modality} {entry.backend} model, not a Piper voice."), None
    try:
        return status, resolve(settings.speech_model, settings.cache_dir).path
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
            whisper_status, model_dir = _resolve(settings)
            voice_status, voice_path = _resolve_voice(settings)
            state.status, state.speech_status = whisper_status, voice_status

            async def load_whisper() -> None:
                if model_dir is not None:
                    state.engine = await load_model(whisper_status, lambda: WhisperEngine(model_dir, settings))

            async def load_voice() -> None:
                if voice_path is not None and voice_status is not None:
                    state.voice = await load_model(voice_status, lambda: PiperEngine(voice_path, settings))

            # Side by side, each in its own thread; a voice that fails leaves transcription up (and says why).
            await asyncio.gather(load_whisper(), load_voice())
            yield
        finally:
            shutil.rmtree(state.upload_dir, ignore_errors=True)

    app = FastAPI(
        title="nexa audio service",
        description="OpenAI-compatible speech to text with faster-whisper, and text to speech with Piper.",
        version="0.1.0",
        lifespan=lifespan,
    )
    registry = install_common(app, "audio")
    queue = AdmissionQueue(settings.max_concurrency, settings.queue_size, settings.retry_after_s)
    app.state.audio = AudioState(settings, queue, AudioMetrics(registry, queue))
    add_model_routes(
        app,
        lambda: app.state.audio.status,
        lambda: [s for s in (app.state.audio.speech_status,) if s is not None],
    )
    app.include_router(router)
    app.include_router(speech_router)
    return app
