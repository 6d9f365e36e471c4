"""Embedding models as models of the text service's pool: the loader of their backend (an ONNX
Runtime session and the micro-batcher that owns it), their memory estimate, and which one a
request without `model` gets.

An embedding model is loaded, kept alive, pinned and unloaded like any other model of the pool.
Its batcher belongs to the loaded model: unloading the model stops the batcher and frees the
session with it.
"""

from __future__ import annotations

import importlib.util

from nexa_common.catalogue import ModelError, ResolvedModel
from nexa_common.kit.models import BackendLoader, files_bytes

from .arrivals import Arrivals
from .embedding_batcher import EmbeddingBatcher, EmbeddingMetrics
from .settings import Settings

_BACKEND_PACKAGES = ("onnxruntime", "tokenizers")  # the `onnx` extra
BYTES_PER_BATCH_TOKEN = 48 * 1024
"""ONNX Runtime's arena for the activations of a batch, per input token it can hold: measured for
all-MiniLM-L6-v2, a full batch of 32 inputs of 256 tokens takes ~400 MiB above the weights (the
arena keeps it while the model is loaded and gives it back with the session)."""


class EmbeddingRuntime:
    """A loaded embedding model as the pool holds it: the batcher, which owns the engine.

    `slots` is how many requests may be inside the batcher at once (`EMBEDDING_QUEUE_SIZE`): they
    must all reach it together to share engine calls; the pool's admission queue holds the rest."""

    def __init__(self, batcher: EmbeddingBatcher, slots: int) -> None:
        self.batcher = batcher
        self.engine = batcher.engine
        self.slots = slots

    def close(self) -> None:
        self.batcher.close()


def embedding_loader(settings: Settings, metrics: EmbeddingMetrics, arrivals: Arrivals) -> BackendLoader:
    """The pool's loader for `Backend.ONNX_EMBEDDING` models, in the service's process: deleting an
    ONNX Runtime session gives its memory back, arena included (tests/embeddings/test_embedding_pool.py
    measures it), so a worker process would buy nothing."""

    def load(model: ResolvedModel) -> EmbeddingRuntime:
        missing = [name for name in _BACKEND_PACKAGES if importlib.util.find_spec(name) is None]
        if missing:
            # The container images carry no ONNX Runtime (as for ONNX text models): local mode has it.
            raise ModelError(
                f"'{model.entry.name}' needs the embeddings backend, which is not installed here "
                f"({', '.join(missing)} missing): pip install 'nexa-text[embeddings]', or serve it in local mode "
                f"(`nexa server --local`)"
            )
        from .embedding_engine import EmbeddingEngine  # needs the optional backend, checked above

        engine = EmbeddingEngine(model.path, n_threads=settings.threads, batch_size=settings.embedding_max_batch)
        batcher = EmbeddingBatcher(
            engine,
            metrics,
            max_batch=settings.embedding_max_batch,
            wait_s=settings.embedding_batch_wait_ms / 1000,
            queue_size=settings.embedding_queue_size,
            arrivals=arrivals,
        )
        return EmbeddingRuntime(batcher, settings.embedding_queue_size)

    def estimate(model: ResolvedModel) -> int:
        folder = model.path if model.path.is_dir() else model.path.parent
        try:
            from .embedding_engine import Manifest

            max_tokens = Manifest.read(folder).max_tokens
        except (ImportError, ModelError):
            return files_bytes(folder)  # the load will say what is wrong (the backend, the folder)
        return files_bytes(folder) + settings.embedding_max_batch * max_tokens * BYTES_PER_BATCH_TOKEN

    return BackendLoader(load, estimate)
