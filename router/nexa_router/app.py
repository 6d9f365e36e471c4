"""The router app: one public API in front of the text, image and audio services."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from nexa_common.service import install_common

from .metrics import RouterMetrics
from .models import ModelDirectory
from .openapi import install_openapi
from .operator import add_operator_routes
from .playground import install_playground
from .routes import add_proxy_routes
from .settings import Settings
from .status import add_status_routes
from .upstreams import close_upstreams, open_upstreams

DESCRIPTION = """An OpenAI-compatible API for local models (text, images, audio), with the routes of the
original `nexa server`. Point any OpenAI client at `/v1`.

Errors use OpenAI's body: `{"error": {"message", "type", "param", "code"}}`. When the server has
API keys, every `/v1` route needs `Authorization: Bearer <key>`."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    # httpx logs every request at INFO: a second, costlier access log without the request's context.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.upstreams = open_upstreams(settings, app.state.metrics)
        try:
            yield
        finally:
            await close_upstreams(app.state.upstreams)
            app.state.upstreams = {}

    app = FastAPI(title="nexa", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.api_keys = tuple(key.encode() for key in settings.api_keys)
    app.state.upstreams = {}
    app.state.models = ModelDirectory(settings.ready_timeout_s)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            expose_headers=["X-Request-ID", "X-Nexa-Ignored-Fields"],
        )
    # Added after CORS, so it wraps it: preflight answers get request IDs and access-log lines too.
    registry = install_common(app, "router")
    app.state.metrics = RouterMetrics(registry)
    add_status_routes(app, keys_required=bool(settings.api_keys))
    add_operator_routes(app, keys_required=bool(settings.api_keys))
    add_proxy_routes(app, settings)
    install_openapi(app)
    install_playground(app)
    return app
