"""Router settings, from `NEXA_ROUTER_*` environment variables."""

from __future__ import annotations

import os
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from nexa_common.modalities import MODALITIES, Modality
from nexa_common.settings import ComponentSettings, comma_separated

MIB = 1024 * 1024


class Settings(ComponentSettings):
    model_config = SettingsConfigDict(env_prefix="NEXA_ROUTER_")

    port: int = 8000
    """Port the router binds to (the public API)."""

    upstreams: dict[Modality, str] = Field(default_factory=dict)
    """Base URL of each model service, from `NEXA_ROUTER_<MODALITY>_URL` (e.g. NEXA_ROUTER_TEXT_URL=
    http://127.0.0.1:8001) for every modality of the table; empty or unset: its routes answer 503."""

    # NoDecode: the environment gives "key1,key2", not a JSON list.
    api_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Accepted API keys, comma-separated; when any is set every /v1 route needs `Authorization: Bearer <key>`."""
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    """Origins allowed to call the API from a browser, comma-separated (`*` for any); empty: no CORS headers."""

    connect_timeout_s: float = Field(default=3.0, gt=0)
    """How long to wait for a connection to a service; beyond it the modality answers 503."""
    read_timeout_s: float = Field(default=600.0, gt=0)
    """How long to wait for the next bytes from a service (model work can take minutes); beyond it 504."""
    pool_timeout_s: float = Field(default=30.0, gt=0)
    """How long a request waits for a free pooled connection when all are busy; beyond it 503."""
    max_connections: int = Field(default=100, ge=1)
    """Most open connections to each service."""
    max_keepalive_connections: int = Field(default=20, ge=0)
    """Idle connections kept open to each service for reuse."""
    keepalive_expiry_s: float = Field(default=60.0, gt=0)
    """How long an idle pooled connection is kept; below the services' own keep-alive (75 s)."""

    max_json_body_bytes: int = Field(default=2 * MIB, ge=1)
    """Largest JSON body of the text routes, txt2img and images/generations; larger answers 413."""
    max_img2img_body_bytes: int = Field(default=32 * MIB, ge=1)
    """Largest /v1/img2img body (it may carry the input image as base64); larger answers 413."""
    max_audio_body_bytes: int = Field(default=25 * MIB, ge=1)
    """Largest audio upload (multipart body), as OpenAI's limit; larger answers 413."""

    public_base_url: str = ""
    """The API's address as clients see it (e.g. https://ai.example.com), passed to the services for absolute
    URLs in answers (image `url`s); empty: taken from each request (X-Forwarded-* or Forwarded, else Host)."""

    ready_timeout_s: float = Field(default=2.0, gt=0)
    """Time limit for asking each service whether it is ready (for /ready and /v1/models)."""

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        return comma_separated(value)

    @model_validator(mode="before")
    @classmethod
    def _upstream_urls(cls, data: Any) -> Any:
        """`<modality>_url` keyword arguments, else `NEXA_ROUTER_<MODALITY>_URL`, into `upstreams`."""
        if not isinstance(data, dict):
            return data
        urls = dict(data.get("upstreams") or {})
        for spec in MODALITIES:
            given = data.pop(f"{spec.name}_url", None)
            if given is None:
                given = os.environ.get(spec.router_url_env)
            if given is not None and spec.modality not in urls:
                urls[spec.modality] = given
        data["upstreams"] = urls
        return data

    @field_validator("upstreams")
    @classmethod
    def _no_trailing_slash(cls, value: dict[Modality, str]) -> dict[Modality, str]:
        return {modality: url.strip().rstrip("/") for modality, url in value.items()}

    def upstream_urls(self) -> dict[Modality, str]:
        """The configured services, by modality."""
        return {modality: url for modality, url in self.upstreams.items() if url}
