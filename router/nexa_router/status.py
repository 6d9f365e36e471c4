"""`/ready`, `/v1/models` and `/v1/models/{id}`: what the router sees of its services, asked concurrently."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from nexa_common.errors import error_responses
from nexa_common.schemas.common import Readiness
from nexa_common.schemas.models import ModelCard, ModelList

from .auth import require_api_key
from .models import ModelDirectory
from .upstreams import Upstream

log = logging.getLogger("nexa.router")


async def _readiness(upstream: Upstream, timeout_s: float, request_id: str) -> Readiness:
    try:
        response = await upstream.client.get("/ready", timeout=timeout_s, headers={"x-request-id": request_id})
    except httpx.HTTPError as exc:
        return Readiness(status="failed", detail=f"not reachable ({type(exc).__name__})")
    try:
        return Readiness.model_validate_json(response.content)
    except ValidationError:
        return Readiness(status="failed", detail=f"unexpected /ready answer (HTTP {response.status_code})")


def add_status_routes(app: FastAPI, keys_required: bool) -> None:
    @app.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}}, tags=["operations"])
    async def ready(request: Request) -> JSONResponse:
        """200 when every configured service is ready; 503 otherwise. `upstreams` has each service's view."""
        upstreams: dict[str, Upstream] = request.app.state.upstreams
        timeout_s: float = request.app.state.settings.ready_timeout_s
        request_id: str = request.scope["state"]["request_id"]
        answers = await asyncio.gather(*(_readiness(u, timeout_s, request_id) for u in upstreams.values()))
        views = {u.modality.value: answer for u, answer in zip(upstreams.values(), answers, strict=True)}
        states = {view.status for view in views.values()}
        overall = "ready" if states <= {"ready"} else "failed" if "failed" in states else "loading"
        body = Readiness(status=overall, upstreams=views)  # type: ignore[arg-type]
        return JSONResponse(body.model_dump(exclude_none=True), status_code=200 if overall == "ready" else 503)

    keys = [Depends(require_api_key)] if keys_required else []

    @app.get(
        "/v1/models",
        response_model=ModelList,
        responses=error_responses(401),
        tags=["models"],
        operation_id="listModels",
        dependencies=keys,
    )
    async def models(request: Request) -> ModelList:
        """Every model this server can serve, loaded or not, in OpenAI's list shape; each card also says
        which service serves it (`modality`), its `backend`, `state` (loaded, loading, available,
        failed), `capabilities` and `aliases`."""
        directory: ModelDirectory = request.app.state.models
        cards = await directory.cards(request.app.state.upstreams, request.scope["state"]["request_id"], fresh=True)
        return ModelList(data=cards)

    @app.get(
        "/v1/models/{model_id:path}",
        response_model=ModelCard,
        responses=error_responses(401, 404),
        tags=["models"],
        operation_id="retrieveModel",
        dependencies=keys,
    )
    async def model(request: Request, model_id: str) -> ModelCard:
        """One model's card, by name or alias (what the OpenAI SDK's `models.retrieve` asks for)."""
        directory: ModelDirectory = request.app.state.models
        return await directory.card(model_id, request.app.state.upstreams, request.scope["state"]["request_id"])
