"""The operator API on the router: the loaded models of every service, and loading or unloading one
on the service that serves it (`nexa ps`, `nexa load`, `nexa unload` call these). Under the API keys
when the server has them."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from nexa_common.errors import APIError, error_responses
from nexa_common.modalities import Modality
from nexa_common.model_errors import not_found
from nexa_common.schemas.models import LoadedModel, LoadedModelList, LoadRequest, UnloadRequest, UnloadResponse

from . import upstreams as errors
from .auth import require_api_key
from .models import ModelDirectory
from .upstreams import Upstream

log = logging.getLogger("nexa.router")

LOAD_TIMEOUT_S = 900.0
"""A load may wait for room and then read gigabytes; the operator waits for it."""


async def _loaded(upstream: Upstream, timeout_s: float, request_id: str) -> list[LoadedModel]:
    try:
        response = await upstream.client.get("/v1/operator/models", timeout=timeout_s,
                                             headers={"x-request-id": request_id})  # fmt: skip
        response.raise_for_status()
        return LoadedModelList.model_validate_json(response.content).data
    except (httpx.HTTPError, ValidationError) as exc:
        log.warning("no loaded models from the %s service: %s", upstream.modality.value, type(exc).__name__)
        return []


async def _send(request: Request, path: str, name: str, body: dict[str, object]) -> JSONResponse:
    """POST the operator request to the service that serves `name` (asking each one in turn when the
    router does not know the model), and relay its answer."""
    upstreams: dict[Modality, Upstream] = request.app.state.upstreams
    directory: ModelDirectory = request.app.state.models
    request_id: str = request.scope["state"]["request_id"]
    owner = await directory.owner(name, upstreams, request_id)
    if owner is not None and owner not in upstreams:
        raise errors.not_configured(owner, path)
    candidates = [upstreams[owner]] if owner is not None else list(upstreams.values())
    answer: httpx.Response | None = None
    for upstream in candidates:
        try:
            answer = await upstream.client.post(path, json=body, timeout=LOAD_TIMEOUT_S,
                                                headers={"x-request-id": request_id})  # fmt: skip
        except httpx.TransportError:
            raise errors.unreachable(upstream.modality) from None
        if answer.status_code != 404 or owner is not None:
            break
    if answer is None or (answer.status_code == 404 and owner is None):
        cards = await directory.cards(upstreams, request_id)
        raise not_found(name, (c.id for c in cards))
    try:
        payload = answer.json()
    except ValueError:
        raise APIError(502, "The service gave an answer that is not JSON.", code="upstream_error") from None
    return JSONResponse(payload, status_code=answer.status_code)


def add_operator_routes(app: FastAPI, keys_required: bool) -> None:
    operator = APIRouter(
        prefix="/v1/operator",
        tags=["operator"],
        dependencies=[Depends(require_api_key)] if keys_required else [],
    )

    @operator.get("/models", response_model=LoadedModelList, responses=error_responses(401), operation_id="listLoaded")
    async def loaded(request: Request) -> LoadedModelList:
        """The models loaded (or loading) in every service, with their memory, keep-alive and requests."""
        upstreams: dict[Modality, Upstream] = request.app.state.upstreams
        timeout_s: float = request.app.state.settings.ready_timeout_s
        request_id: str = request.scope["state"]["request_id"]
        lists = await asyncio.gather(*(_loaded(u, timeout_s, request_id) for u in upstreams.values()))
        return LoadedModelList(data=[model for models in lists for model in models])

    @operator.post(
        "/models/load",
        response_model=LoadedModel,
        responses=error_responses(400, 401, 404, 503, 507),
        operation_id="loadModel",
    )
    async def load(body: LoadRequest, request: Request) -> JSONResponse:
        """Load a model on its service now (`pin` keeps it loaded; `keep_alive` sets how long it stays idle)."""
        return await _send(request, "/v1/operator/models/load", body.model, body.model_dump(exclude_none=True))

    @operator.post(
        "/models/unload",
        response_model=UnloadResponse,
        responses=error_responses(400, 401, 404, 503),
        operation_id="unloadModel",
    )
    async def unload(body: UnloadRequest, request: Request) -> JSONResponse:
        """Unload a model (at once, or as soon as its requests are done) and unpin it."""
        return await _send(request, "/v1/operator/models/unload", body.model, body.model_dump())

    app.include_router(operator)
