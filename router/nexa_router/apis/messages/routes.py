"""`POST /v1/messages` (plain or streamed) and `POST /v1/messages/count_tokens`."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError

from nexa_common.catalogue import Modality
from nexa_common.errors import APIError
from nexa_common.event_stream import EventStream
from nexa_common.modalities import router_route
from nexa_common.schemas.messages import AnthropicError, CountTokensRequest, MessagesRequest, TokenCount
from nexa_common.schemas.text import TOKENIZE_PATH, TokenizeResponse

from ...auth import require_api_key
from ...settings import Settings
from ..body import read_json
from ..fields import account
from ..responses.conversation import new_id
from ..routing import add_route, body_limit
from ..sse import sse
from ..upstream_chat import ChatStream, StreamFailed, open_chat_stream, post_json, renamed
from .errors import AnthropicRoute, install_path_errors
from .events import MessageBuilder
from .fields import ignored_by_value
from .translate import chat_request, tokenize_request

# The chat request's fields, by the names this API gives them (for the text service's 400s).
_PARAMS = {"stop": "stop_sequences"}
_DISCONNECT_CHECK_S = 0.25
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": AnthropicError} for status in (400, 401, 404, 413, 429, 500, 502, 503, 504)
}


async def _stream(builder: MessageBuilder, chat: ChatStream) -> AsyncIterator[bytes]:
    try:
        async for chunk in chat.chunks():
            for name, data in builder.feed(chunk):
                yield sse(name, data)
        final = builder.finish()
    except StreamFailed as exc:
        final = builder.fail(exc.error)
    finally:
        await chat.close()
    for name, data in final:
        yield sse(name, data)


async def _complete(request: Request, builder: MessageBuilder, chat: ChatStream) -> bool:
    """Run the answer to its end; False when the client left first (closing the stream stops the model)."""
    checked = time.monotonic()
    try:
        async for chunk in chat.chunks():
            builder.feed(chunk)
            if time.monotonic() - checked > _DISCONNECT_CHECK_S:
                checked = time.monotonic()
                if await request.is_disconnected():
                    return False
    except StreamFailed as exc:
        raise exc.error from None
    finally:
        await chat.close()
    builder.finish()
    return True


def add_messages_routes(app: FastAPI, settings: Settings) -> None:
    api = APIRouter(
        dependencies=[Depends(require_api_key)] if settings.api_keys else [],
        tags=["messages"],
        route_class=AnthropicRoute,
    )
    message_limit = body_limit(settings, router_route("createMessage"))
    count_limit = body_limit(settings, router_route("countMessageTokens"))

    async def create_message(request: Request) -> Response:
        """`system`, `messages` with text / tool_use / tool_result blocks, client `tools` with
        `input_schema` (grammar-constrained calls), `tool_choice`, `max_tokens` (required),
        `stop_sequences`, `temperature`, `top_p`, `top_k`, `stream` with Anthropic's events. Errors
        use Anthropic's shape. The answer's `stop_sequence` is always null: the text service does not
        say which stop sequence ended an answer (its `stop_reason` is then `end_turn`)."""
        body = await read_json(request, MessagesRequest, *message_limit)
        account(request, body, ignored_by_value(body), strict=settings.strict_fields)
        chat_body = chat_request(body)
        try:
            chat = await open_chat_stream(
                request.app.state.upstreams.get(Modality.TEXT), chat_body, request.scope["state"]["request_id"]
            )
        except APIError as exc:
            raise renamed(exc, _PARAMS) from None
        builder = MessageBuilder(new_id("msg"), body.model)
        if body.stream:
            return EventStream(_stream(builder, chat), chat.close)
        if not await _complete(request, builder, chat):
            return Response(status_code=499)  # nginx's "client closed request": nobody reads it
        return JSONResponse(builder.message)

    async def count_tokens(request: Request) -> JSONResponse:
        """Counts the prompt as the model sees it: the chat template rendered over `system`, `messages`
        and the `tools` (with the instructions that describe them), by the text service."""
        body = await read_json(request, CountTokensRequest, *count_limit)
        account(request, body, ignored_by_value(body), strict=settings.strict_fields)
        try:
            answer = await post_json(
                request.app.state.upstreams.get(Modality.TEXT),
                TOKENIZE_PATH,
                tokenize_request(body),
                request.scope["state"]["request_id"],
            )
        except APIError as exc:
            raise renamed(exc, _PARAMS) from None
        try:
            count = TokenizeResponse.model_validate(answer).prompt_tokens
        except ValidationError:
            raise APIError(
                502, f"The text service answered {TOKENIZE_PATH} without a token count.", code="upstream_error"
            ) from None
        return JSONResponse(TokenCount(input_tokens=count).model_dump())

    add_route(api, "createMessage", create_message, _ERRORS)
    add_route(api, "countMessageTokens", count_tokens, _ERRORS)
    app.include_router(api)
    install_path_errors(app)
