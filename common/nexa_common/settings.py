"""Settings every component shares; each component subclasses `ServiceSettings` with its prefix.

Values come from the environment (`NEXA_<COMPONENT>_<FIELD>`, nested with `__`), so local mode,
compose and Helm configure a component the same way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, ClassVar

import psutil
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

log = logging.getLogger("nexa.settings")


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
    """Settings common to the model services (text, image, audio): one name per concept everywhere."""

    # Old names of settings, accepted (from the environment or as keyword arguments) for one release.
    deprecated_names: ClassVar[dict[str, str]] = {}

    model: str = ""
    """Catalogue name or local path of the model to serve; empty means the modality's default."""
    cache_dir: Path = Field(default_factory=default_cache_dir)
    """Model cache folder (the same one `nexa pull` fills)."""
    threads: int = Field(default_factory=physical_cores, ge=1)
    """CPU threads of the engine; physical cores, since hyper-threads slow matrix work down."""
    max_concurrency: int = Field(default=1, ge=1)
    """Requests that run at the same time."""
    queue_size: int = Field(default=16, ge=0)
    """Requests allowed to wait for a free slot; beyond that the answer is 429."""
    retry_after_s: int = Field(default=2, ge=1)
    """The `Retry-After` hint sent with a 429."""
    exit_on_fatal: bool = True
    """Exit (non-zero) when an engine dies, so compose or Kubernetes restart the service."""
    fatal_exit_delay_s: float = Field(default=2.0, ge=0)
    """How long a dead engine is reported on /ready (503) before the process exits."""
    fatal_failures: int = Field(default=3, ge=1)
    """Unexpected engine failures in a row, with no success between them, that mean the engine is dead."""

    @model_validator(mode="before")
    @classmethod
    def _deprecated_aliases(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not cls.deprecated_names:
            return data
        prefix = str(cls.model_config.get("env_prefix", ""))
        for old, new in cls.deprecated_names.items():
            if new in data:
                data.pop(old, None)
                continue
            env_name = f"{prefix}{old}".upper()
            if old in data:
                data[new] = data.pop(old)
            elif env_name in os.environ:
                data[new] = os.environ[env_name]
            else:
                continue
            log.warning("setting %s is deprecated; use %s%s", env_name, prefix.upper(), new.upper())
        return data
