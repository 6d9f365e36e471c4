"""The image service's settings, from `NEXA_IMAGE_*` environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from nexa_common.modalities import Modality, spec
from nexa_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NEXA_IMAGE_", env_nested_delimiter="__", extra="ignore")
    deprecated_names: ClassVar[dict[str, str]] = {"num_threads": "threads"}

    port: int = spec(Modality.IMAGE).port
    """Port the service binds to."""
    model: str = spec(Modality.IMAGE).default_model
    """Catalogue name, diffusers folder or single-file checkpoint (.safetensors/.ckpt) to serve."""
    single_file_config: str = ""
    """For a single-file checkpoint: a diffusers folder (or hub repo, if reachable) whose configs describe it."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """Where inference runs; `auto` picks CUDA when torch sees a GPU."""
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    """Weights' precision; `auto` is float16 on CUDA and float32 on the CPU."""
    worker_processes: bool = True
    """Run each model in a worker process, so that unloading it gives all its memory back (torch's
    allocator keeps freed memory in the process otherwise)."""
    input_dir: Path | None = None
    """The only folder img2img's `image_path` may read from; unset, `image_path` is refused."""
    output_dir: Path | None = None
    """Where generated PNGs are saved for their `url`; default `<cache_dir>/image-outputs`."""
    max_outputs_kept: int = Field(default=500, ge=1)
    """Saved PNGs kept at most; the oldest are deleted first."""
    output_max_age_s: int = Field(default=24 * 3600, ge=1)
    """Saved PNGs older than this are deleted."""
    min_size: int = Field(default=64, ge=8)
    """Smallest width or height accepted, in pixels."""
    max_width: int = Field(default=1024, ge=8, le=4096)
    """Largest width accepted, in pixels."""
    max_height: int = Field(default=1024, ge=8, le=4096)
    """Largest height accepted, in pixels."""
    default_steps: int = Field(default=20, ge=1)
    """Denoising steps when `/v1/images/generations` does not say."""
    max_steps: int = Field(default=100, ge=1, le=1000)
    """Most denoising steps a request may ask for."""
    max_input_bytes: int = Field(default=20 * 1024 * 1024, ge=1024)
    """Largest img2img input image accepted (upload, base64 or file)."""
    public_base_url: str = ""
    """The API's address as clients see it (e.g. https://ai.example.com), for the absolute `url` of images;
    empty: taken from the request (X-Forwarded-* or Forwarded from a proxy or the router, else Host)."""
    max_input_pixels: int = Field(default=4096 * 4096, ge=64 * 64)
    """Largest img2img input image accepted, in pixels (decompression bombs are refused)."""

    @field_validator("input_dir", "output_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # NEXA_IMAGE_INPUT_DIR= must disable image_path, not allow the current directory.
        return None if isinstance(value, str) and not value.strip() else value
