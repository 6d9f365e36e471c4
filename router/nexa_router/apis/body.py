"""A JSON request body read within the router's size limit and validated into the API's model;
too large is a 413, anything invalid a 400 (through the app's validation handler, so the message
names the field as every other route's does)."""

from __future__ import annotations

from typing import TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.requests import Request

from ..proxy import BodyTooLarge, read_body, too_large

M = TypeVar("M", bound=BaseModel)


async def read_json(request: Request, model: type[M], limit: int, setting: str) -> M:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large(request.url.path, limit, setting)
    try:
        body = await read_body(request, limit)
    except BodyTooLarge:
        raise too_large(request.url.path, limit, setting) from None
    try:
        return model.model_validate_json(body)
    except ValidationError as exc:
        # `loc` gains the "body" prefix FastAPI's own validation errors have (the handler strips it).
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
