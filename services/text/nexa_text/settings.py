"""Settings of the text service (environment: NEXA_TEXT_<FIELD>)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from nexa_common.catalogue import DEFAULT_EMBEDDING_MODEL
from nexa_common.modalities import Modality, spec
from nexa_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NEXA_TEXT_", env_nested_delimiter="__", extra="ignore")
    deprecated_names: ClassVar[dict[str, str]] = {"n_threads": "threads"}

    port: int = spec(Modality.TEXT).port
    """Port the text service binds to."""
    model: str = spec(Modality.TEXT).default_model
    """Catalogue name or path of a GGUF model or an ONNX Runtime GenAI folder; its backend picks the engine."""
    n_ctx: int = Field(default=2048, ge=64, le=1_048_576)
    """Context size in tokens (prompt plus completion); the seed's `--nctx`."""
    n_batch: int = Field(default=512, ge=1)
    """Prompt tokens evaluated per llama.cpp batch."""
    n_gpu_layers: int = Field(default=0, ge=-1)
    """Layers offloaded to the GPU (-1: all); needs a CUDA build of llama-cpp-python."""
    chat_format: str | None = None
    """A llama-cpp-python chat format (e.g. `chatml`, `llama-2`) overriding the GGUF's own template."""
    default_max_tokens: int = Field(default=512, ge=1)
    """Completion length when a request gives none (always capped by the room left in the context)."""
    max_concurrency: int = Field(default=1, ge=1, le=64)
    """Sequences generated at once. 1: the one-sequence llama.cpp engine, requests take turns;
    more: the batched engine decodes up to this many together in one context (GGUF models only;
    each slot reserves a KV cache of n_ctx tokens)."""
    max_schema_bytes: int = Field(default=65_536, ge=1024)
    """Largest JSON schema (tool parameters, response_format) turned into a grammar."""

    # Embeddings (/v1/embeddings). The embedding model sits beside the chat model until the model
    # pool serves every model by the request's `model`.
    embedding_model: str = DEFAULT_EMBEDDING_MODEL
    """Catalogue name or path of the embedding model served on /v1/embeddings; empty: none."""
    embedding_max_batch: int = Field(default=32, ge=1, le=1024)
    """Most inputs embedded in one engine call; concurrent requests share calls up to this size."""
    embedding_batch_wait_ms: float = Field(default=10.0, ge=0, le=1000)
    """Longest wait of a queued input for requests already being read to join its engine call (no
    wait when none is on its way)."""
    embedding_max_inputs: int = Field(default=2048, ge=1)
    """Most inputs in one request (OpenAI's limit); more answers 400."""
    embedding_max_request_tokens: int = Field(default=65_536, ge=1)
    """Most tokens in one request, all inputs together; more answers 413."""
    embedding_truncate: bool = False
    """Cut inputs longer than the model's context to fit (as sentence-transformers does) instead of a 400."""
    embedding_queue_size: int = Field(default=256, ge=1)
    """Embedding requests that may wait for the engine; beyond it, 429."""
