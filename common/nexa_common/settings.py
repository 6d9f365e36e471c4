"""Settings every component shares; each component subclasses `ServiceSettings` with its prefix.

Values come from the environment (`NEXA_<COMPONENT>_<FIELD>`, nested with `__`), so local mode,
compose and Helm configure a component the same way.
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def physical_cores() -> int:
    """Physical cores: hyper-threads slow matrix work down, so thread pools default to these."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def default_cache_dir() -> Path:
    """Where models are cached: `NEXA_CACHE`, else `~/.cache/nexa`."""
    env = os.environ.get("NEXA_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nexa"


class ComponentSettings(BaseSettings):
    """Settings of every component (router and services)."""

    model_config = SettingsConfigDict(env_nested_delimiter="__", extra="ignore")

    host: str = "127.0.0.1"
    """Address the component binds to."""
    port: int = 8000
    """Port the component binds to."""
    log_level: str = "info"
    """Python log level."""
    log_json: bool = True
    """One JSON object per log line (for log collectors); false gives plain text."""


class ServiceSettings(ComponentSettings):
    """Settings common to the model services (text, image, audio)."""

    model: str = ""
    """Catalogue name or local path of the model to serve; empty means the modality's default."""
    cache_dir: Path = Field(default_factory=default_cache_dir)
    """Model cache folder (the same one `nexa pull` fills)."""
    max_concurrency: int = Field(default=1, ge=1)
    """Requests that run at the same time."""
    queue_size: int = Field(default=16, ge=0)
    """Requests allowed to wait for a free slot; beyond that the answer is 429."""
    retry_after_s: int = Field(default=2, ge=1)
    """The `Retry-After` hint sent with a 429."""
    strict_fields: bool = False
    """Answer request fields this server does not know with a 400 naming them, instead of accepting
    them and naming them in the `X-Nexa-Ignored-Fields` response header."""
