"""What the audio app holds between requests (on `app.state.audio`; nothing at module level)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fastapi import Request

from nexa_common.admission import AdmissionQueue
from nexa_common.service import ModelStatus

from .engine import Transcriber
from .metrics import AudioMetrics
from .settings import Settings
from .speech.engine import PiperEngine
from .upload import MIB


@dataclass
class AudioState:
    settings: Settings
    queue: AdmissionQueue
    metrics: AudioMetrics
    status: ModelStatus | None = None
    engine: Transcriber | None = None
    upload_dir: Path | None = None
    speech_status: ModelStatus | None = None
    voice: PiperEngine | None = None

    @property
    def max_file_bytes(self) -> int:
        return int(self.settings.max_upload_mb * MIB)


def audio_state(request: Request) -> AudioState:
    state: AudioState = request.app.state.audio
    return state
