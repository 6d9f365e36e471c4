"""What every FastAPI app of the project has: OpenAI errors, request IDs, access log, `/health` and
`/metrics`. The model services add their model routes with the kit (`nexa_common.kit`)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from .errors import install_error_handlers
from .fields import IgnoredFieldsMiddleware
from .metrics import HttpMetrics, ObservabilityMiddleware, metrics_endpoint
from .protocol import HeadAsGetMiddleware, RefuseUpgradesMiddleware
from .schemas.common import Health


def install_common(app: FastAPI, component: str, registry: CollectorRegistry | None = None) -> CollectorRegistry:
    """Errors, observability, the ignored-fields header, HEAD and upgrade handling, `/health` and
    `/metrics`; returns the app's metrics registry."""
    registry = registry or CollectorRegistry()
    install_error_handlers(app)
    app.add_middleware(IgnoredFieldsMiddleware)
    app.add_middleware(ObservabilityMiddleware, metrics=HttpMetrics(registry, component))
    # Outermost: HEAD is seen as GET by everything inside; upgrades never reach the routes.
    app.add_middleware(HeadAsGetMiddleware)
    app.add_middleware(RefuseUpgradesMiddleware)
    app.add_api_route("/metrics", metrics_endpoint(registry), methods=["GET"], include_in_schema=False)

    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> Health:
        """The process is alive (it may still be loading its model: see /ready)."""
        return Health()

    return registry
