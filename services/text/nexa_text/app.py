"""The text service's FastAPI app: the model is loaded in the lifespan, state lives on app.state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, CatalogueEntry, LocalSource, Modality, ModelError, find, resolve
from nexa_common.service import ModelStatus, add_model_routes, install_common, load_model

from . import chat, completions, embeddings
from .batched_engine import BatchedEngine
from .embedding_model import EmbeddingModel
from .engine import TextEngine
from .llama_engine import LlamaEngine
from .prompting import make_renderer
from .runtime import Runtime
from .serving import TextState
from .settings import Settings


def _entry(settings: Settings) -> CatalogueEntry:
    try:
        return find(settings.model)
    except ModelError:
        # Unknown names still get a status, so /ready can say what is wrong (the load fails with why).
        name = Path(settings.model).name or settings.model
        return CatalogueEntry(name, Modality.TEXT, Backend.GGUF, LocalSource(Path(settings.model)), "")


def _load_engine(path: Path, entry: CatalogueEntry, settings: Settings) -> TextEngine:
    backend = entry.backend
    if entry.embeddings:
        raise ModelError(
            f"'{entry.name}' is an embedding model: serve it with NEXA_TEXT_EMBEDDING_MODEL (on /v1/embeddings) "
            f"and give NEXA_TEXT_MODEL a text generation model"
        )
    if backend is Backend.ONNX:
        return _load_onnx_engine(path, settings)
    if backend is not Backend.GGUF:
        raise ModelError(f"the text service runs GGUF and ONNX models, not {backend.value} ones")
    options = {
        "n_ctx": settings.n_ctx,
        "n_threads": settings.n_threads,
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


def _load_onnx_engine(path: Path, settings: Settings) -> TextEngine:
    try:  # an optional backend: `pip install nexa-text[onnx]`
        from .onnx_engine import OnnxEngine
    except ImportError as exc:
        raise ModelError(
            f"'{path.name}' is an ONNX model, and the ONNX backend is not installed "
            f"({exc.name} is missing): pip install 'nexa-text[onnx]'"
        ) from exc
    return OnnxEngine(path, n_ctx=settings.n_ctx, n_threads=settings.n_threads)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()
    state = TextState(status=ModelStatus(_entry(settings)), embeddings=EmbeddingModel(settings, registry))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        def load() -> Runtime:
            resolved = resolve(settings.model, settings.cache_dir)
            engine = _load_engine(resolved.path, resolved.entry, settings)
            try:
                renderer = make_renderer(engine, settings.chat_format or resolved.entry.chat_format)
            except Exception:
                engine.close()
                raise
            return Runtime(engine, renderer, settings, registry)

        # The embedding model loads beside the chat model; /ready waits for the chat model only.
        preload = asyncio.create_task(state.embeddings.preload())
        state.runtime = await load_model(state.status, load)
        try:
            yield
        finally:
            preload.cancel()
            await asyncio.gather(preload, return_exceptions=True)
            await state.embeddings.close()
            if state.runtime is not None:
                state.runtime.close()

    app = FastAPI(
        title="nexa text service",
        summary="Completions, chat and function calling on a GGUF or ONNX model (OpenAI-compatible).",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_common(app, "text", registry)
    app.state.text = state
    add_model_routes(app, lambda: state.status, lambda: [card] if (card := state.embeddings.card()) else [])
    app.include_router(completions.router)
    app.include_router(chat.router)
    app.include_router(embeddings.router)
    return app
