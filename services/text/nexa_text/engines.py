"""Which llama.cpp engine serves a GGUF model: the one place that decides (the model pool's
loader calls it too).

The batched engine is the default: concurrent requests are decoded together instead of taking
turns, in one KV cache shared by its slots. `NEXA_TEXT_MAX_CONCURRENCY=1` keeps the one-sequence
engine (llama-cpp-python's own generation loop) available.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .batched_engine import BatchedEngine
from .engine import TextEngine
from .gguf_info import trained_context
from .llama_engine import LlamaEngine
from .settings import Settings

MIN_KV_PER_SLOT = 256
"""KV cells per slot, on average, below which more slots only make sequences wait for room."""


def auto_slots(threads: int, kv_tokens: int, on_gpu: bool) -> int:
    """Slots when the settings leave it open. On a CPU the aggregate rate keeps growing up to
    about four sequences per thread (one step reads the weights once for all of them); a GPU
    has room for more. Either way each slot should have a fair share of the cache."""
    wanted = 16 if on_gpu else min(16, max(4, 4 * threads))
    return max(1, min(wanted, kv_tokens // MIN_KV_PER_SLOT))


def gguf_engine(path: Path, settings: Settings, coming: Callable[[], int] = lambda: 0) -> TextEngine:
    """`coming`: how many requests are on their way to the engine (see BatchedEngine)."""
    n_ctx = settings.context_size(trained_context(path))
    options = {
        "n_ctx": n_ctx,
        "n_threads": settings.threads,
        "n_batch": settings.n_batch,
        "n_gpu_layers": settings.n_gpu_layers,
    }
    if settings.max_concurrency == 1:
        return LlamaEngine(path, **options)
    kv_tokens = settings.kv_cells(n_ctx)
    slots = settings.max_concurrency or auto_slots(settings.threads, kv_tokens, settings.n_gpu_layers != 0)
    return BatchedEngine(
        path,
        slots=slots,
        kv_tokens=kv_tokens,
        prefix_reuse=settings.prefix_cache,
        adapt_threads=settings.adapt_threads,
        coming=coming,
        **options,
    )
