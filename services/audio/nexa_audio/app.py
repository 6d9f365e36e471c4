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
from nexa_common.kit.models import MIB, BackendLoader, Engine, ModelPool, files_bytes
from nexa_common.kit.service import service_app
from nexa_common.modalities import Modality, spec

from .engine import WhisperEngine, WhisperWorker
from .metrics import AudioMetrics
from .routes import router
from .settings import Settings
from .speech.engine import PiperEngine, voice_bytes
from .speech.routes import router as speech_router
from .state import AudioState

WORKER_BASE_BYTES = 160 * MIB
"""A Whisper worker's own memory beside the model: Python, CTranslate2, PyAV (measured ~150 MiB)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()

    def load(model: ResolvedModel) -> Engine:
        if settings.worker_processes:
            return WhisperWorker(model.path, settings)
        return WhisperEngine(model.path, settings)

    def estimate(model: ResolvedModel) -> int:
        # The weights (int8 on CPU from float16 files: about their size), the decoder's buffers,
        # and in a worker process the libraries it imports.
        return files_bytes(model.path) + (WORKER_BASE_BYTES if settings.worker_processes else 48 * MIB)

    def load_voice(model: ResolvedModel) -> Engine:
        return PiperEngine(model.path, settings)

    audio = spec(Modality.AUDIO)
    whisper = BackendLoader(load, estimate, isolated=settings.worker_processes)
    # In-process: a closed voice gives its memory back (PiperEngine.close trims the heap), so a worker
    # process would only add a copy of every sentence's samples between processes.
    voice = BackendLoader(load_voice, voice_bytes)
    pool = ModelPool(audio, settings, {Backend.CT2: whisper, Backend.PIPER: voice}, registry)
    state = AudioState(audio, settings, pool, registry, AudioMetrics(registry))

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
