"""Settings of the audio service, from `NEXA_AUDIO_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, ClassVar, Literal

from pydantic import Field
from pydantic_settings import NoDecode, SettingsConfigDict

from nexa_common.catalogue import DEFAULT_VOICE
from nexa_common.modalities import Modality, spec
from nexa_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NEXA_AUDIO_")
    deprecated_names: ClassVar[dict[str, str]] = {"cpu_threads": "threads"}

    port: int = spec(Modality.AUDIO).port
    """Port the service binds to."""
    model: str = spec(Modality.AUDIO).default_model
    """The default model, loaded at start: catalogue name, local CTranslate2 Whisper folder or Piper voice."""
    models: Annotated[list[str], NoDecode] = Field(default_factory=lambda: [DEFAULT_VOICE])
    """More models, loaded on demand (comma-separated): by default the voice `piper-joe`, so that
    /v1/audio/speech answers out of the box; empty (`NEXA_AUDIO_MODELS=`) serves no voice."""
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    """Where CTranslate2 runs the model."""
    compute_type: str | None = None
    """CTranslate2 compute type; unset means int8 on CPU and the model's own type on CUDA."""
    vad: bool = True
    """Skip non-speech with the Silero VAD (faster and fewer hallucinations on silence)."""
    max_upload_mb: float = Field(default=25.0, gt=0)
    """Largest accepted audio file in MiB (OpenAI's limit is 25 MB); larger uploads get 413 while streaming in."""
    worker_processes: bool = True
    """Run each model in a worker process, so that unloading it gives all its memory back
    (CTranslate2 keeps some in the process otherwise)."""
    tmp_dir: Path | None = None
    """Parent of the service's private upload folder; unset means the system temp folder."""

    def resolved_compute_type(self) -> str:
        if self.compute_type:
            return self.compute_type
        return "int8" if self.device == "cpu" else "default"
