"""The routes the router answers itself, declared from their rows of the modality table (path,
method, operation id, summary, response model, body limit), as the forwarded routes are; only the
handler and the error answers it documents are the translation layer's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter

from nexa_common.modalities import Route, router_route

from ..settings import Settings


def add_route(
    api: APIRouter, operation_id: str, endpoint: Callable[..., Any], responses: dict[int | str, dict[str, Any]]
) -> Route:
    """Declare the table's route `operation_id` on `api`, answered by `endpoint` (its docstring is the
    route's description)."""
    route = router_route(operation_id)
    api.add_api_route(
        route.path,
        endpoint,
        methods=[route.method],
        operation_id=route.operation_id,
        summary=route.summary,
        response_model=route.response_model,
        responses=responses,
    )
    return route


def body_limit(settings: Settings, route: Route) -> tuple[int, str]:
    """The route's body size limit and the setting that sets it (for the 413's message)."""
    return getattr(settings, route.limit_setting), f"NEXA_ROUTER_{route.limit_setting.upper()}"
