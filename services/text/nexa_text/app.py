"""The text service's FastAPI app: the kit's model service with one loader per backend (GGUF on
llama.cpp, ONNX on onnxruntime-genai) and the completion and chat routes."""

from __future__ import annotations

import asyncio
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, ModelError, ResolvedModel
from nexa_common.kit.models import ModelPool
from nexa_common.kit.service import service_app
from nexa_common.modalities import Modality, spec

from . import chat, completions, embeddings
from .embedding_model import EmbeddingModel
from .engine import TextEngine
from .metrics import TextMetrics
from .prompting import make_renderer
from .runtime import Runtime
from .serving import TextState
from .settings import Settings


def _gguf_engine(path: Path, settings: Settings) -> TextEngine:
    # Imported here: an ONNX-only install runs without llama-cpp-python.
    from .batched_engine import BatchedEngine
    from .llama_engine import LlamaEngine

    options = {
        "n_ctx": settings.n_ctx,
        "n_threads": settings.threads,
        "n_batch": settings.n_batch,
        "n_gpu_layers": settings.n_gpu_layers,
    }
    try:
        if settings.max_concurrency > 1:
            return BatchedEngine(path, slots=settings.max_concurrency, **options)
        return LlamaEngine(path, **options)
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
    return OnnxEngine(path, n_ctx=settings.n_ctx, n_threads=settings.threads)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()
    engines = {Backend.GGUF: _gguf_engine, Backend.ONNX: _onnx_engine}

    def load(model: ResolvedModel) -> Runtime:
        if model.entry.embeddings:
            raise ModelError(
                f"'{model.entry.name}' is an embedding model: serve it with NEXA_TEXT_EMBEDDING_MODEL (on "
                f"/v1/embeddings) and give NEXA_TEXT_MODEL a text generation model"
            )
        engine = engines[model.entry.backend](model.path, settings)
        try:
            renderer = make_renderer(engine, settings.chat_format or model.entry.chat_format)
        except Exception:
            engine.close()
            raise
        return Runtime(engine, renderer, settings, state.metrics)

    text = spec(Modality.TEXT)
    pool = ModelPool(text, settings, {backend: load for backend in engines})
    state = TextState(text, settings, pool, registry, TextMetrics(registry, pool), EmbeddingModel(settings, registry))
    preloading: list[asyncio.Task[None]] = []

    async def startup() -> None:
        # The embedding model loads beside the generation model; /ready waits for the latter only.
        preloading.append(asyncio.create_task(state.embeddings.preload()))

    async def shutdown() -> None:
        for task in preloading:
            task.cancel()
        await asyncio.gather(*preloading, return_exceptions=True)
        await state.embeddings.close()

    return service_app(
        state,
        title="nexa text service",
        description="Completions, chat, function calling and embeddings on GGUF and ONNX models (OpenAI-compatible).",
        routers=[completions.router, chat.router, embeddings.router],
        startup=startup,
        shutdown=shutdown,
        more_cards=lambda: [card] if (card := state.embeddings.card()) else [],
    )
