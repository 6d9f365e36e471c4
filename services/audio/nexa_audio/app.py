"""The audio service's FastAPI app: the kit's model service with the faster-whisper loader and the
Piper voice loader (the speech voice is loaded beside the Whisper model), and a private upload folder
made at startup and removed at shutdown."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, ResolvedModel
from nexa_common.kit.models import Loader, ModelPool
from nexa_common.kit.service import service_app
from nexa_common.modalities import Modality, spec

from .engine import WhisperEngine
from .metrics import AudioMetrics
from .routes import router
from .settings import Settings
from .speech.engine import PiperEngine
from .speech.routes import router as speech_router
from .state import AudioState


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()

    def load_whisper(model: ResolvedModel) -> WhisperEngine:
        return WhisperEngine(model.path, settings)

    def load_voice(model: ResolvedModel) -> PiperEngine:
        return PiperEngine(model.path, settings)

    audio = spec(Modality.AUDIO)
    loaders: dict[Backend, Loader] = {Backend.CT2: load_whisper, Backend.PIPER: load_voice}
    voices = [settings.speech_model] if settings.speech_model else []
    state = AudioState(
        audio, settings, ModelPool(audio, settings, loaders, companions=voices), registry, AudioMetrics(registry)
    )

    async def startup() -> None:
        # 0700 and unique: uploads are never where another process or request could read them.
        state.upload_dir = Path(tempfile.mkdtemp(prefix="nexa-audio-", dir=settings.tmp_dir))

    async def shutdown() -> None:
        if state.upload_dir is not None:
            shutil.rmtree(state.upload_dir, ignore_errors=True)

    return service_app(
        state,
        title="nexa audio service",
        description="OpenAI-compatible speech to text with faster-whisper, and text to speech with Piper.",
        routers=[router, speech_router],
        startup=startup,
        shutdown=shutdown,
    )
