"""Settings of the text service (environment: NEXA_TEXT_<FIELD>)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from nexa_common.modalities import Modality, spec
from nexa_common.settings import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NEXA_TEXT_", env_nested_delimiter="__", extra="ignore")
    deprecated_names: ClassVar[dict[str, str]] = {"n_threads": "threads"}

    port: int = spec(Modality.TEXT).port
    """Port the text service binds to."""
    model: str = spec(Modality.TEXT).default_model
    """Catalogue name or path of a GGUF model or an ONNX Runtime GenAI folder; its backend picks the engine."""
    n_ctx: int | None = Field(default=None, ge=64, le=1_048_576)
    """Context size in tokens (prompt plus completion); the seed's `--nctx`. Unset: what the model was
    trained on, at most `MAX_N_CTX`. Never more than the model was trained on."""
    max_n_ctx: int = Field(default=8192, ge=64, le=1_048_576)
    """Largest context given by default, to bound memory: the KV cache grows with it (SmolLM2-135M:
    22.5 MiB per 1k tokens, Gemma 3 270M: 18 MiB per 1k tokens; the batched engine's slots share one
    cache of this size, see `KV_CACHE_TOKENS`)."""
    adapt_threads: bool = True
    """Decode with fewer threads while other processes keep them from their cores, back to
    `threads` once the machine is free again (batched engine)."""
    n_batch: int = Field(default=512, ge=1)
    """Prompt tokens evaluated per llama.cpp batch."""
    n_gpu_layers: int = Field(default=0, ge=-1)
    """Layers offloaded to the GPU (-1: all); needs a CUDA build of llama-cpp-python."""
    chat_format: str | None = None
    """A llama-cpp-python chat format (e.g. `chatml`, `llama-2`) overriding the GGUF's own template."""
    default_max_tokens: int = Field(default=512, ge=1)
    """Completion length when a request gives none (always capped by the room left in the context)."""
    max_concurrency: int = Field(default=0, ge=0, le=64)
    """Sequences generated at once. 0 (default): the batched engine with a slot count derived from
    the machine and the model (4 per thread, 4 to 16, at least 256 KV cells each); more than 1: the
    batched engine with that many slots; 1: the one-sequence llama.cpp engine, requests take turns.
    GGUF models only (ONNX runs one sequence at a time)."""
    kv_cache_tokens: int = Field(default=0, ge=0, le=4_194_304)
    """KV cache cells the batched engine's slots share (0: the context size). Memory grows with this, not
    with the slot count; when it runs out, the newest sequence waits for room."""
    prefix_cache: bool = True
    """Reuse the KV cache of a prompt's longest prefix that any slot holds (batched engine)."""

    @field_validator("n_ctx", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # compose passes NEXA_TEXT_N_CTX= when the user sets nothing.
        return None if isinstance(value, str) and not value.strip() else value

    def context_size(self, trained: int | None) -> int:
        """The context to allocate for a model trained on `trained` tokens (None: unknown)."""
        wanted = self.n_ctx if self.n_ctx is not None else self.max_n_ctx
        return min(wanted, trained) if trained else wanted

    def kv_cells(self, n_ctx: int) -> int:
        """KV cache cells a GGUF model gets: the one-sequence engine its context, the batched one the
        cache its slots share (at least one whole context)."""
        return n_ctx if self.max_concurrency == 1 else max(self.kv_cache_tokens, n_ctx)

    max_schema_bytes: int = Field(default=65_536, ge=1024)
    """Largest JSON schema (tool parameters, response_format) turned into a grammar."""

    # Embeddings (/v1/embeddings), on the embedding models of the pool (MODEL / MODELS name them).
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
    """Embedding requests of one model that may be queued in its batcher at once (they must all reach
    it to share engine calls); `QUEUE_SIZE` more wait for a place, and beyond that 429."""
