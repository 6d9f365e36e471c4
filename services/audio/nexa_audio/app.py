"""The audio service's FastAPI app: the kit's model service with the faster-whisper loader, and a
private upload folder made at startup and removed at shutdown."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, ResolvedModel
from nexa_common.kit.models import ModelPool
from nexa_common.kit.service import service_app
from nexa_common.modalities import Modality, spec

from .engine import WhisperEngine
from .metrics import AudioMetrics
from .routes import router
from .settings import Settings
from .state import AudioState


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()

    def load(model: ResolvedModel) -> WhisperEngine:
        return WhisperEngine(model.path, settings)

    audio = spec(Modality.AUDIO)
    state = AudioState(
        audio, settings, ModelPool(audio, settings, {Backend.CT2: load}), registry, AudioMetrics(registry)
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
        description="OpenAI-compatible speech to text with faster-whisper.",
        routers=[router],
        startup=startup,
        shutdown=shutdown,
    )
