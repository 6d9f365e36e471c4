"""Anthropic's error shape on the Messages routes: `{"type": "error", "error": {"type", "message"}}`.

Every failure is first answered as everywhere else (the app's handlers give an OpenAI error body:
validation, API keys, the text service's own errors, a 500), then re-shaped here, so the two APIs
say the same thing and no error path is written twice.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}
# Kept from the original answer; the body's own headers are recomputed.
_KEPT_HEADERS = ("retry-after", "www-authenticate", "x-nexa-ignored-fields")


def anthropic_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    return "api_error" if status >= 500 else "invalid_request_error"


def _message(error: dict[str, Any]) -> str:
    message = str(error.get("message") or "Request failed.")
    if error.get("code") == "context_length_exceeded":
        # The words Anthropic's own API uses, which its clients (Claude Code among them) look for.
        return f"prompt is too long: {message}"
    return message


def anthropic_error(response: Response, request_id: str | None) -> Response:
    """An error answer in OpenAI's body, re-shaped; anything else is returned as it is."""
    if response.status_code < 400 or not isinstance(response, JSONResponse):
        return response
    try:
        error = json.loads(bytes(response.body))["error"]
    except (ValueError, KeyError, TypeError):
        return response
    body = {
        "type": "error",
        "error": {"type": anthropic_type(response.status_code), "message": _message(error)},
        "request_id": request_id,
    }
    headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
    return JSONResponse(body, status_code=response.status_code, headers=headers)


def _handler_for(request: Request, exc: Exception) -> Callable[..., Any] | None:
    handlers = request.app.exception_handlers
    return next((handlers[cls] for cls in type(exc).__mro__ if cls in handlers), None)


class AnthropicRoute(APIRoute):
    """A route whose errors, its dependencies' included (API keys), are answered in Anthropic's shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                response = await handle(request)
            except Exception as exc:
                handler = _handler_for(request, exc)
                if handler is None:
                    raise
                response = await handler(request, exc)
            return anthropic_error(response, request.scope.get("state", {}).get("request_id"))

        return route


def install_path_errors(app: FastAPI, prefix: str = "/v1/messages") -> None:
    """Errors raised before any route runs (404 for an unknown path under `prefix`, 405 for a wrong
    method) in Anthropic's shape there too; the app's own handler answers them everywhere else."""
    openai_handler = app.exception_handlers[StarletteHTTPException]

    async def handler(request: Request, exc: Exception) -> Response:
        answered = openai_handler(request, exc)
        response = await answered if inspect.isawaitable(answered) else answered
        if request.url.path == prefix or request.url.path.startswith(prefix + "/"):
            return anthropic_error(response, request.scope.get("state", {}).get("request_id"))
        return response

    app.add_exception_handler(StarletteHTTPException, handler)
