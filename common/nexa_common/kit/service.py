"""A model service's FastAPI app, the same way for every modality: one state object on
`app.state.service` (and the dependency that hands it to routes), the model pool started in the
lifespan (loads run in the background), `/health`, `/ready`, `/v1/models` and `/v1/models/{id}`,
the operator API (`/v1/operator/models`, `.../load`, `.../unload`), `/metrics`, and the exit that
follows a dead engine."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from ..errors import error_responses
from ..modalities import ModalitySpec
from ..schemas.common import Readiness
from ..schemas.models import (
    LoadedModel,
    LoadedModelList,
    LoadRequest,
    ModelCard,
    ModelList,
    UnloadRequest,
    UnloadResponse,
)
from ..service import install_common
from ..settings import ServiceSettings
from .cancellation import while_connected
from .models import ModelPool

log = logging.getLogger("nexa.service")

FATAL_EXIT_CODE = 70
"""EX_SOFTWARE: what a service exits with after its engine died."""
_GRACE_S = 15.0
"""After a dead engine, how long a graceful shutdown may take before the process is ended anyway."""


@dataclass
class ServiceState:
    """What a model service keeps between requests; each service subclasses it with its own parts."""

    spec: ModalitySpec
    settings: ServiceSettings
    pool: ModelPool
    registry: CollectorRegistry


def get_state(request: Request) -> Any:
    """The service's state (a FastAPI dependency: `Annotated[TextState, Depends(get_state)]`)."""
    return request.app.state.service


Hook = Callable[[], Awaitable[None]]


def service_app(
    state: ServiceState,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    startup: Hook | None = None,
    shutdown: Hook | None = None,
) -> FastAPI:
    """The app of a model service. `startup`/`shutdown` run before the pool starts and after it closes."""
    pool, settings = state.pool, state.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if startup is not None:
            await startup()
        await pool.start()
        watcher = asyncio.create_task(_exit_when_fatal(pool, settings))
        try:
            yield
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
            await pool.close()
            if shutdown is not None:
                await shutdown()
            if pool.fatal_reason is not None and settings.exit_on_fatal:
                log.error("exiting with code %d: %s", FATAL_EXIT_CODE, pool.fatal_reason)
                os._exit(FATAL_EXIT_CODE)  # uvicorn would exit 0 after a graceful shutdown

    app = FastAPI(title=title, description=description, version="0.1.0", lifespan=lifespan)
    install_common(app, state.spec.name, state.registry)
    app.state.service = state
    _add_model_routes(app, pool)
    for router in routers:
        app.include_router(router)
    return app


async def _exit_when_fatal(pool: ModelPool, settings: ServiceSettings) -> None:
    """After a dead engine: report it on /ready for a moment, then shut down gracefully and exit non-zero."""
    reason = await pool.wait_fatal()
    if not settings.exit_on_fatal:
        return
    await asyncio.sleep(settings.fatal_exit_delay_s)
    log.error("shutting down: %s", reason)
    # A request stuck in the dead engine could hold the graceful shutdown forever: end it regardless.
    timer = threading.Timer(_GRACE_S, os._exit, args=(FATAL_EXIT_CODE,))
    timer.daemon = True
    timer.start()
    os.kill(os.getpid(), signal.SIGTERM)


def _add_model_routes(app: FastAPI, pool: ModelPool) -> None:
    @app.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["operations"])
    async def ready() -> JSONResponse:
        """200 once the default model has loaded (others load on demand); 503 with the reason otherwise."""
        body = pool.readiness()
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if body.status == "ready" else 503)

    @app.get("/v1/models", response_model=ModelList, tags=["models"])
    async def models() -> ModelList:
        """Every model this service can serve, loaded or not, with its state and capabilities."""
        return ModelList(data=pool.cards())

    @app.get("/v1/models/{model_id:path}", response_model=ModelCard, responses=error_responses(404), tags=["models"])
    async def model(model_id: str) -> ModelCard:
        """One model's card (404 `model_not_found` for a model this service cannot serve)."""
        return pool.card(model_id)

    operator = APIRouter(prefix="/v1/operator", tags=["operator"])

    @operator.get("/models", response_model=LoadedModelList)
    async def loaded() -> LoadedModelList:
        """The models loaded or loading now, with their memory, keep-alive and requests."""
        return LoadedModelList(data=pool.loaded_models())

    @operator.post("/models/load", response_model=LoadedModel, responses=error_responses(400, 404, 503, 507))
    async def load(body: LoadRequest, request: Request) -> LoadedModel:
        """Load a model now (waiting for room as a request would); `pin` keeps it loaded, `keep_alive`
        sets how long it stays once idle."""
        keep_alive: float | Literal[False] | None = False
        if body.keep_alive is not None:
            keep_alive = None if body.keep_alive < 0 else body.keep_alive
        model = await while_connected(request, pool.load(body.model, body.pin, keep_alive))
        return model.loaded()

    @operator.post("/models/unload", response_model=UnloadResponse, responses=error_responses(400, 404))
    async def unload(body: UnloadRequest) -> UnloadResponse:
        """Unload a model now, or as soon as its requests are done if it is busy (it is unpinned)."""
        model = await pool.unload(body.model)
        return UnloadResponse(id=model.name, state=model.state, unloading=model.state == "loaded")

    app.include_router(operator)
