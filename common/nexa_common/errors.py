"""The OpenAI error body, and the handlers that make every failure use it.

Every component answers errors as `{"error": {"message", "type", "param", "code"}}` so the
official `openai` client raises the right exception class with a useful message. Stack traces
and filesystem paths never reach the client: unexpected failures are logged and answered with a
generic message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("nexa.errors")

# OpenAI's `type` values, by HTTP status.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "conflict_error",
    413: "request_too_large",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout_error",
    507: "insufficient_storage",
}


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    """The body of every non-2xx answer."""

    error: ErrorDetail


def error_type(status: int) -> str:
    return _TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type(status), "param": param, "code": code}}


class APIError(Exception):
    """Raise anywhere in a request to answer with an OpenAI error body."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        return JSONResponse(
            error_body(self.status, self.message, self.param, self.code),
            status_code=self.status,
            headers=self.headers,
        )


def error_response(status: int, message: str, **kwargs: Any) -> JSONResponse:
    return APIError(status, message, **kwargs).response()


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` for a route, so the document (and fuzzers, generated clients) know the error shape."""
    return {status: {"model": ErrorResponse, "description": _TYPES.get(status, "error")} for status in statuses}


def _param_of(loc: tuple[Any, ...]) -> str | None:
    # FastAPI prefixes the location ("body", "query", "form"); the client only knows the field.
    parts = [str(p) for p in loc if p not in ("body", "query", "form", "path", "header")]
    return ".".join(parts) or None


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    errors = exc.errors()
    if not errors:
        return "Invalid request.", None
    first = errors[0]
    param = _param_of(tuple(first.get("loc", ())))
    # A validator's own message already says what is wrong; pydantic's "Value error, " adds nothing.
    msg = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", None
    text = f"Invalid value for '{param}': {msg}" if param else f"Invalid request: {msg}"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
    return text, param


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the OpenAI error body; validation problems are 400s, as OpenAI's are."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(exc)
        return error_response(400, message, param=param, code="invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = "No such route. See /docs for the routes this server answers."
        elif exc.status_code == 405:
            message = "Method not allowed on this route."
        headers = getattr(exc, "headers", None)
        return error_response(exc.status_code, message, headers=dict(headers) if headers else None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        # The client gets no detail: it could carry paths or internals. The log has it all.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "Internal server error; the server log has the details.")
