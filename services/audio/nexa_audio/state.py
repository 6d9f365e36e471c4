"""What the audio app holds between requests (on `app.state.service`; nothing at module level)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from fastapi import Depends

from nexa_common.kit.service import ServiceState, get_state

from .metrics import AudioMetrics
from .settings import Settings
from .upload import MIB


@dataclass
class AudioState(ServiceState):
    settings: Settings
    metrics: AudioMetrics
    upload_dir: Path | None = None
    """The service's private upload folder (0700), made at startup."""

    @property
    def max_file_bytes(self) -> int:
        return int(self.settings.max_upload_mb * MIB)


AudioStateDep = Annotated[AudioState, Depends(get_state)]
