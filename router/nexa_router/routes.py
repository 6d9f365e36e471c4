"""The public /v1 routes of the modality table that its services answer: each declared explicitly
with its wire types, each forwarding raw bytes to the service of its modality (the routes the router
answers itself, `served_by="router"`, are declared by `nexa_router.apis`).

Declaring every route (rather than one catch-all) keeps the OpenAPI document complete, and unknown
paths answer 404 at the router instead of being sent on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from nexa_common.errors import error_responses
from nexa_common.modalities import Modality, ModalitySpec, Route, forwarded_routes

from .auth import require_api_key
from .models import ModelDirectory
from .proxy import BodyCheck, forward
from .settings import Settings

# What a forwarded request may answer: the service's own errors (400, 429, 503 while loading, and the
# modality's extra ones, such as 507 when image storage is full) and the router's (401, 413, 502, 503, 504).
_ERRORS = (400, 401, 413, 429, 500, 502, 503, 504)


def _responses(spec: ModalitySpec, route: Route) -> dict[int | str, dict[str, Any]]:
    if route.body == "none":
        responses = error_responses(400, 401, 404, 500, 502, 503, 504)
        responses[200] = {
            "description": "The PNG file.",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
        return dict(responses)
    responses = dict(error_responses(*_ERRORS, *spec.extra_errors))
    if route.media:
        binary = {"schema": {"type": "string", "format": "binary"}}
        responses[200] = {
            "description": "The file's bytes, sent as they are produced (chunked); with "
            '`"stream_format": "sse"`, server-sent events carrying them in base64.',
            "content": {**dict.fromkeys(route.media, binary), "text/event-stream": {"schema": {"type": "string"}}},
        }
    elif route.streams:
        responses[200] = {
            "description": 'JSON; with `"stream": true`, server-sent events, one chunk per `data:` line, then '
            '`data: [DONE]`. A failure after the stream began arrives as a last `data: {"error": {...}}` event.',
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    elif route.body == "multipart":
        responses[200] = {
            "description": "JSON for response_format json and verbose_json; text for text, srt and vtt.",
            "content": {"text/plain": {"schema": {"type": "string"}}, "text/vtt": {"schema": {"type": "string"}}},
        }
    return responses


def _handler(modality: Modality, route: Route, settings: Settings) -> Callable[..., Awaitable[Response]]:
    limit: int = getattr(settings, route.limit_setting)
    setting = f"NEXA_ROUTER_{route.limit_setting.upper()}"
    stream_body = route.body == "multipart"

    if route.body == "none":

        async def get_file(request: Request, name: str) -> Response:
            # `name` is declared for the document; the raw path is what is forwarded.
            return await forward(request, request.app.state.upstreams.get(modality), modality, limit, setting, False)

        return get_file

    async def proxy(request: Request) -> Response:
        upstreams = request.app.state.upstreams
        checked = None if stream_body or route.capability is None else _model_check(request, route, modality)
        return await forward(request, upstreams.get(modality), modality, limit, setting, stream_body, checked)

    return proxy


def _model_check(request: Request, route: Route, modality: Modality) -> BodyCheck:
    """The check of a JSON body's `model` against the route, before the body is forwarded."""

    async def check(body: bytes) -> None:
        directory: ModelDirectory = request.app.state.models
        await directory.check(body, route, modality, request.app.state.upstreams, request.scope["state"]["request_id"])

    return check


def add_proxy_routes(app: FastAPI, settings: Settings) -> None:
    """Every forwarded route of the modality table, to the service of its modality."""
    # Without keys the check is left out entirely: nothing to run per request, and the document
    # then (rightly) declares no security.
    v1 = APIRouter(dependencies=[Depends(require_api_key)] if settings.api_keys else [])
    for spec, route in forwarded_routes():
        v1.add_api_route(
            route.path,
            _handler(spec.modality, route, settings),
            methods=[route.method],
            operation_id=route.operation_id,
            summary=route.summary,
            tags=[spec.name],
            response_model=route.response_model,
            response_class=Response if route.body == "none" or route.media else JSONResponse,
            responses=_responses(spec, route),
        )
    app.include_router(v1)
