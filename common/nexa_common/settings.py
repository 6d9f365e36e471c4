"""Settings every component shares; each component subclasses `ServiceSettings` with its prefix.

Values come from the environment (`NEXA_<COMPONENT>_<FIELD>`, nested with `__`), so local mode,
compose and Helm configure a component the same way.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any, ClassVar

import psutil
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .schemas.keep_alive import keep_alive_seconds

log = logging.getLogger("nexa.settings")


def physical_cores() -> int:
    """Physical cores: hyper-threads slow matrix work down, so thread pools default to these."""
    return psutil.cpu_count(logical=False) or os.cpu_count() or 1


def comma_separated(value: object) -> object:
    """`"a, b"` from the environment as `["a", "b"]` (for list settings marked NoDecode)."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def memory_limit_bytes() -> int:
    """The memory this process may use: its cgroup's limit (a container, a pod) or the machine's RAM."""
    total = int(psutil.virtual_memory().total)
    for path in (Path("/sys/fs/cgroup/memory.max"), Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")):
        try:
            text = path.read_text().strip()
        except OSError:
            continue
        if text.isdigit():
            return min(total, int(text))
    return total


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
    """Catalogue name or local path of the default model (what requests without `model` get); it is
    loaded at start. Empty means the modality's default."""
    models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """More models this service serves, comma-separated (catalogue names or local paths); they load
    on demand, when a request names them."""
    allow_any_installed: bool = False
    """Also serve every catalogue model of this modality present on this machine (wheels installed,
    models pulled into the cache, even while the server runs). On in local mode (`nexa server`)."""
    max_loaded_models: int = Field(default=3, ge=1)
    """Models loaded at once; loading one more first unloads the least recently used idle one."""
    memory_budget_mb: int = Field(default=0, ge=0)
    """Memory the loaded models may take together, in MiB (estimated from their files and context,
    then measured); 0: three quarters of the memory this process may use."""
    keep_alive: str = "5m"
    """How long an idle model stays loaded: seconds or a duration ("30s", "5m", "1h"); negative: for
    ever; 0: unloaded after each request. A request's `keep_alive` overrides it for its model. The
    default model (`model`) is not unloaded for being idle, only to make room."""
    pinned_models: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Models that stay loaded (never unloaded for room nor when idle), comma-separated."""
    load_retry_s: float = Field(default=5.0, ge=0)
    """After a model failed to load, how long until a request may try loading it again."""
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
    strict_fields: bool = False
    """Answer request fields this server does not know with a 400 naming them, instead of accepting
    them and naming them in the `X-Nexa-Ignored-Fields` response header."""
    exit_on_fatal: bool = True
    """Exit (non-zero) when an engine dies, so compose or Kubernetes restart the service."""
    fatal_exit_delay_s: float = Field(default=2.0, ge=0)
    """How long a dead engine is reported on /ready (503) before the process exits."""
    fatal_failures: int = Field(default=3, ge=1)
    """Unexpected engine failures in a row, with no success between them, that mean the engine is dead."""

    @field_validator("models", "pinned_models", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return comma_separated(value)

    @field_validator("keep_alive", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        keep_alive_seconds(value)  # a ValueError saying what is wrong with it
        return str(value)

    def keep_alive_seconds(self) -> float | None:
        """The keep-alive in seconds; None: for ever."""
        return keep_alive_seconds(self.keep_alive)

    def memory_budget_bytes(self) -> int:
        if self.memory_budget_mb:
            return self.memory_budget_mb * 1024 * 1024
        return memory_limit_bytes() * 3 // 4

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
