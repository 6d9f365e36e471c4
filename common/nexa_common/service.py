"""What every FastAPI app of the project has: OpenAI errors, request IDs, access log, `/health`,
`/metrics`; and for the model services, a model status behind `/ready` and `/v1/models`."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TypeVar

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry

from .catalogue import CatalogueEntry
from .errors import APIError, install_error_handlers
from .metrics import HttpMetrics, ObservabilityMiddleware, metrics_endpoint
from .schemas.common import Health, ModelCard, ModelList, Readiness

log = logging.getLogger("nexa.service")
T = TypeVar("T")


def install_common(app: FastAPI, component: str, registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """Errors, observability, `/health` and `/metrics`; returns the app's metrics registry (`registry`
    when given: for metrics made before the app)."""
    registry = registry or CollectorRegistry()
    install_error_handlers(app)
    app.add_middleware(ObservabilityMiddleware, metrics=HttpMetrics(registry, component))
    app.add_api_route("/metrics", metrics_endpoint(registry), methods=["GET"], include_in_schema=False)

    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Health:
        """The process is alive (it may still be loading its model: see /ready)."""
        return Health()

    return registry


class ModelStatus:
    """The model a service serves and whether it is loaded; `/ready` and `/v1/models` read it."""

    def __init__(self, entry: CatalogueEntry) -> None:
        self.entry = entry
        self.state: str = "loading"
        self.detail: str | None = None
        self.loaded_at = int(time.time())

    def readiness(self) -> Readiness:
        return Readiness(status=self.state, model=self.entry.name, detail=self.detail)  # type: ignore[arg-type]

    def require_ready(self) -> None:
        """Raise a 503 unless the model is loaded."""
        if self.state == "ready":
            return
        if self.state == "loading":
            raise APIError(
                503,
                f"Model '{self.entry.name}' is still loading; retry shortly.",
                code="model_loading",
                headers={"Retry-After": "2"},
            )
        raise APIError(503, f"Model '{self.entry.name}' failed to load: {self.detail}", code="model_failed")

    def card(self) -> ModelCard:
        return ModelCard(
            id=self.entry.name,
            created=self.loaded_at,
            modality=self.entry.modality.value,
            backend=self.entry.backend.value,
        )


def add_model_routes(
    app: FastAPI, status: Callable[[], ModelStatus | None], more: Callable[[], list[ModelCard]] = list
) -> None:
    """`/ready` (200 only once the model is loaded) and `/v1/models` for a model service; `more`
    gives the cards of further models it serves (which `/ready` does not wait for)."""

    @app.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["operations"])
    async def ready() -> JSONResponse:
        """200 when the model is loaded and requests will be served; 503 with the reason otherwise."""
        current = status()
        body = current.readiness() if current else Readiness(status="failed", detail="no model configured")
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if body.status == "ready" else 503)

    @app.get("/v1/models", response_model=ModelList, tags=["models"])
    async def models() -> ModelList:
        """The model this service serves (an empty list until it is loaded)."""
        current = status()
        return ModelList(data=([current.card()] if current and current.state == "ready" else []) + more())


async def load_model(status: ModelStatus, loader: Callable[[], T]) -> T | None:
    """Run a blocking model load in a thread; a failure marks the service not-ready, with the reason,
    instead of crashing it (a crash would only restart into the same failure)."""
    started = time.perf_counter()
    try:
        result = await asyncio.to_thread(loader)
    except Exception as exc:  # the reason goes to /ready; the service stays up to report it
        status.state, status.detail = "failed", f"{type(exc).__name__}: {exc}"
        log.error("model %s failed to load: %s", status.entry.name, status.detail)
        return None
    status.state, status.detail, status.loaded_at = "ready", None, int(time.time())
    log.info(
        "model %s loaded in %.2f s",
        status.entry.name,
        time.perf_counter() - started,
        extra={"fields": {"model": status.entry.name}},
    )
    return result
