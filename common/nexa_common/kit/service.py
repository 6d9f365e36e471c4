"""A model service's FastAPI app, the same way for every modality: one state object on
`app.state.service` (and the dependency that hands it to routes), the model pool started in the
lifespan (loads run in the background), `/health`, `/ready`, `/v1/models`, `/metrics`, the queue
metrics, and the exit that follows a dead engine."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry, Gauge

from ..modalities import ModalitySpec
from ..schemas.common import ModelCard, ModelList, Readiness
from ..service import install_common
from ..settings import ServiceSettings
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


class QueueMetrics:
    """`nexa_<modality>_queue_depth` and `nexa_<modality>_running`, over every model of the pool."""

    def __init__(self, registry: CollectorRegistry, spec: ModalitySpec, pool: ModelPool) -> None:
        prefix = f"nexa_{spec.name}"
        Gauge(f"{prefix}_queue_depth", "Requests waiting for a model", registry=registry).set_function(
            lambda: pool.waiting
        )
        Gauge(f"{prefix}_running", "Requests being served by a model", registry=registry).set_function(
            lambda: pool.running
        )


Hook = Callable[[], Awaitable[None]]


def service_app(
    state: ServiceState,
    *,
    title: str,
    description: str,
    routers: Sequence[APIRouter],
    startup: Hook | None = None,
    shutdown: Hook | None = None,
    more_cards: Callable[[], list[ModelCard]] | None = None,
) -> FastAPI:
    """The app of a model service. `startup`/`shutdown` run before the pool starts and after it closes;
    `more_cards` lists models the service serves outside its pool (`/ready` does not wait for them)."""
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
    QueueMetrics(state.registry, state.spec, pool)
    app.state.service = state
    _add_model_routes(app, pool, more_cards or list)
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


def _add_model_routes(app: FastAPI, pool: ModelPool, more_cards: Callable[[], list[ModelCard]]) -> None:
    @app.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["operations"])
    async def ready() -> JSONResponse:
        """200 when the model is loaded and requests will be served; 503 with the reason otherwise."""
        body = pool.readiness()
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if body.status == "ready" else 503)

    @app.get("/v1/models", response_model=ModelList, tags=["models"])
    async def models() -> ModelList:
        """The model this service serves (an empty list until it is loaded)."""
        return ModelList(data=pool.cards() + more_cards())
