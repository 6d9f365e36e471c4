"""`/ready` and `/v1/models`: what the router sees of its services, asked concurrently."""

from __future__ import annotations

import asyncio
import logging

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from nexa_common.errors import error_responses
from nexa_common.schemas.common import ModelCard, ModelList, Readiness

from .auth import require_api_key
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


async def _models(upstream: Upstream, timeout_s: float, request_id: str) -> list[ModelCard]:
    try:
        response = await upstream.client.get("/v1/models", timeout=timeout_s, headers={"x-request-id": request_id})
        response.raise_for_status()
        return ModelList.model_validate_json(response.content).data
    except (httpx.HTTPError, ValidationError) as exc:
        # A service that is down has no models to offer; the others still list theirs.
        log.warning("no model list from the %s service: %s", upstream.modality.value, type(exc).__name__)
        return []


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

    @app.get(
        "/v1/models",
        response_model=ModelList,
        responses=error_responses(401),
        tags=["models"],
        operation_id="listModels",
        dependencies=[Depends(require_api_key)] if keys_required else [],
    )
    async def models(request: Request) -> ModelList:
        """The models of every reachable service, in OpenAI's list shape."""
        upstreams: dict[str, Upstream] = request.app.state.upstreams
        timeout_s: float = request.app.state.settings.ready_timeout_s
        request_id: str = request.scope["state"]["request_id"]
        lists = await asyncio.gather(*(_models(u, timeout_s, request_id) for u in upstreams.values()))
        seen: set[str] = set()
        cards = []
        for card in (card for cards_of_one in lists for card in cards_of_one):
            if card.id not in seen:
                seen.add(card.id)
                cards.append(card)
        return ModelList(data=cards)
