"""The text service's FastAPI app: the kit's model service with one loader per backend (GGUF on
llama.cpp, ONNX on onnxruntime-genai, embedding models on ONNX Runtime), all in the service's own
process (llama.cpp and ONNX Runtime give the memory of an unloaded model back: see
tests/pool/test_pool_memory.py and tests/embeddings/test_embedding_pool.py), and the completion,
chat and embedding routes."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, ModelError, ResolvedModel
from nexa_common.kit.models import BackendLoader, ModelPool, files_bytes
from nexa_common.kit.service import service_app
from nexa_common.modalities import Capability, Modality, spec

from . import chat, completions, embeddings, gguf_info, tokenize
from .arrivals import Arrivals, CountArrivals
from .embedding_batcher import EmbeddingMetrics
from .embedding_model import embedding_loader
from .engine import TextEngine
from .metrics import TextMetrics
from .prompting import make_renderer
from .runtime import Runtime
from .serving import TextState
from .settings import Settings


def gguf_file(path: Path) -> Path:
    """The GGUF of a model: the file itself, or the one GGUF in a built model's folder."""
    if path.is_dir():
        found = sorted(path.glob("*.gguf"))
        if len(found) != 1:
            raise ModelError(f"'{path.name}' holds {len(found)} GGUF files; expected exactly one")
        return found[0]
    return path


def _gguf_engine(path: Path, settings: Settings, coming: Callable[[], int]) -> TextEngine:
    # Imported here: an ONNX-only install runs without llama-cpp-python.
    from .engines import gguf_engine

    path = gguf_file(path)
    try:
        return gguf_engine(path, settings, coming)
    except ValueError as exc:
        # llama-cpp-python's message carries the file's full path, and /ready's reason reaches clients.
        raise ModelError(f"llama.cpp could not load '{path.name}': not a valid GGUF model for this build") from exc


def _onnx_engine(path: Path, settings: Settings) -> TextEngine:
    try:  # an optional backend: `pip install nexa-text[onnx]`
        from .onnx_engine import OnnxEngine
    except ImportError as exc:
        raise ModelError(
            f"'{path.name}' is an ONNX model, and the ONNX backend is not installed "
            f"({exc.name} is missing): pip install 'nexa-text[onnx]'"
        ) from exc
    # The engine takes the smaller of this and the folder's own context_length.
    return OnnxEngine(path, n_ctx=settings.context_size(None), n_threads=settings.threads)


def _gguf_bytes(path: Path, settings: Settings) -> int:
    try:
        file = gguf_file(path)
        context = settings.context_size(gguf_info.trained_context(file))
        # The batched engine's slots share one cache of kv_cells (a whole number of contexts here).
        return gguf_info.serving_bytes(file, context, -(-settings.kv_cells(context) // context))
    except (OSError, gguf_info.NotGGUF, ModelError):
        return files_bytes(path)  # the load will say what is wrong with it


def _onnx_bytes(path: Path, settings: Settings) -> int:
    """The weights, and a float32 KV cache of the context (onnxruntime-genai's CPU default)."""
    folder = path if path.is_dir() else path.parent
    try:
        config = json.loads((folder / "genai_config.json").read_text())["model"]
        decoder = config["decoder"]
        per_token = decoder["num_hidden_layers"] * decoder["num_key_value_heads"] * decoder["head_size"] * 2 * 4
        context = settings.context_size(int(config.get("context_length") or 0) or None)
    except (OSError, ValueError, KeyError, TypeError):
        return files_bytes(folder)
    return files_bytes(folder) + per_token * context + gguf_info.OVERHEAD_BYTES


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()
    # Generation requests on their way to an engine: the batched engine waits a moment for them.
    generating = Arrivals()
    engines: dict[Backend, Callable[[Path, Settings], TextEngine]] = {
        Backend.GGUF: partial(_gguf_engine, coming=lambda: generating.count),
        Backend.ONNX: _onnx_engine,
    }
    sizes = {Backend.GGUF: _gguf_bytes, Backend.ONNX: _onnx_bytes}

    def load(model: ResolvedModel) -> Runtime:
        engine = engines[model.entry.backend](model.path, settings)
        try:
            # A model's own chat format (Gemma's GGUF has no template) wins over the service-wide override.
            renderer = make_renderer(engine, model.entry.chat_format or settings.chat_format)
        except Exception:
            engine.close()
            raise
        return Runtime(engine, renderer, settings, state.metrics)

    def estimate(model: ResolvedModel) -> int:
        return sizes[model.entry.backend](model.path, settings)

    loaders = {backend: BackendLoader(load, estimate) for backend in engines}
    embedding_arrivals = Arrivals()  # one for the service: a request counts before its body says which model
    loaders[Backend.ONNX_EMBEDDING] = embedding_loader(settings, EmbeddingMetrics(registry), embedding_arrivals)
    text = spec(Modality.TEXT)
    pool = ModelPool(text, settings, loaders, registry)
    metrics = TextMetrics(registry, pool, lambda: generating.count)
    state = TextState(text, settings, pool, registry, metrics, embedding_arrivals)
    app = service_app(
        state,
        title="nexa text service",
        description="Completions, chat, function calling and embeddings on GGUF and ONNX models (OpenAI-compatible).",
        routers=[completions.router, chat.router, embeddings.router, tokenize.router],
    )
    # Outermost: a request counts from its first moment, before its body is read.
    generation_paths = frozenset(r.path for r in text.routes if r.streams and r.served_by == "service")
    app.add_middleware(CountArrivals, arrivals=generating, paths=generation_paths)
    embedding_paths = frozenset(r.path for r in text.routes if r.capability is Capability.EMBEDDINGS)
    app.add_middleware(CountArrivals, arrivals=embedding_arrivals, paths=embedding_paths)
    return app
