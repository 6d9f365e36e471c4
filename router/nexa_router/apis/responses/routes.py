"""`/v1/responses`: create (plain or streamed), retrieve, list input items, delete, cancel."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response

from nexa_common.catalogue import Modality
from nexa_common.errors import APIError, error_responses
from nexa_common.event_stream import EventStream
from nexa_common.modalities import router_route
from nexa_common.schemas.responses import DeletedResponse, InputItemList, ResponseObject, ResponsesRequest

from ...auth import require_api_key
from ...settings import Settings
from ...store.handle import ResponseStore
from ..body import read_json
from ..fields import account
from ..routing import add_route, body_limit
from ..sse import sse
from ..upstream_chat import ChatStream, StreamFailed, open_chat_stream, renamed
from .conversation import chat_request, input_items, namespaces, new_id
from .events import Event, ResponseBuilder
from .fields import ignored_by_value, refuse_unsupported
from .inflight import InFlight, InFlightResponses, until_set

# The chat request's fields, by the names this API gives them (for the text service's 400s).
_PARAMS = {"messages": "input", "response_format": "text.format", "max_tokens": "max_output_tokens"}
_DISCONNECT_CHECK_S = 0.25
_CANCEL_WAIT_S = 10.0
_STREAMS = {
    **error_responses(400, 401, 404, 413, 429, 502, 503, 504),
    200: {
        "description": 'JSON; with `"stream": true`, server-sent events: `response.created`, '
        "`response.in_progress`, output item and content events, then `response.completed` "
        "(`response.incomplete` at the token limit, `response.failed` on failure).",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
}


def _not_found(response_id: str) -> APIError:
    return APIError(404, f"Response with id '{response_id}' not found.", param="response_id", code="response_not_found")


def _base(response_id: str, body: ResponsesRequest) -> dict[str, Any]:
    fmt = body.text.format if body.text else None
    return ResponseObject(
        id=response_id,
        created_at=int(time.time()),
        status="in_progress",
        instructions=body.instructions,
        max_output_tokens=body.max_output_tokens,
        model=body.model or "",
        output=[],
        parallel_tool_calls=body.parallel_tool_calls if body.parallel_tool_calls is not None else True,
        previous_response_id=body.previous_response_id,
        store=body.store,
        temperature=body.temperature if body.temperature is not None else 1.0,
        text={"format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"}},
        tool_choice=body.tool_choice or "auto",
        tools=body.tools or [],
        top_p=body.top_p if body.top_p is not None else 1.0,
        truncation=body.truncation or "disabled",
        user=body.user,
        metadata=body.metadata or {},
    ).model_dump()


class _Answer:
    """One response being answered: its builder, the open chat stream, and what to store at the end."""

    def __init__(
        self,
        store: ResponseStore,
        builder: ResponseBuilder,
        chat: ChatStream,
        body: ResponsesRequest,
        items: list[dict[str, Any]],
        context: list[dict[str, Any]],
    ) -> None:
        self.store, self.builder, self.chat = store, builder, chat
        self.body, self.items, self.context = body, items, context

    async def keep(self, final: list[Event]) -> list[Event]:
        """Store the finished response before its last event is sent, so a client that continues it
        the moment it reads `response.completed` finds it (on any replica)."""
        if not self.body.store:
            return final
        record = self.store.record(self.builder.response, self.items, self.context, self.body.previous_response_id)
        try:
            await self.store.put(record)
        except APIError as exc:
            # The answer exists but cannot be continued: say so rather than complete silently.
            return self.builder.fail(exc)
        return final

    async def complete(self, request: Request) -> dict[str, Any] | None:
        """Run to the end (None if the client left first); raise the failure for a plain answer."""
        checked = time.monotonic()
        try:
            async for chunk in self.chat.chunks():
                self.builder.feed(chunk)
                if time.monotonic() - checked > _DISCONNECT_CHECK_S:
                    checked = time.monotonic()
                    if await request.is_disconnected():
                        return None  # closing the stream below stops the generation
        except StreamFailed as exc:
            raise exc.error from None
        finally:
            await self.chat.close()
        await self.keep(self.builder.finish())
        failure = self.builder.response.get("error")
        if failure:  # the store could not keep it: a 503, so the client retries
            raise APIError(503, failure["message"], code=failure["code"], headers={"Retry-After": "2"})
        return self.builder.response

    async def stream(self, entry: InFlight) -> AsyncIterator[bytes]:
        try:
            try:
                async for chunk in until_set(self.chat.chunks(), entry.cancel):
                    for name, data in self.builder.feed(chunk):
                        yield sse(name, data)
                final = self.builder.cancel() if entry.cancel.is_set() else self.builder.finish()
            except StreamFailed as exc:
                final = self.builder.fail(exc.error)
            finally:
                await self.chat.close()  # frees the text service before the store is written
            for name, data in await self.keep(final):
                yield sse(name, data)
        finally:
            entry.finished.set()


async def _create(request: Request, limit: tuple[int, str]) -> Response:
    store: ResponseStore = request.app.state.response_store
    body = await read_json(request, ResponsesRequest, *limit)
    account(request, body, ignored_by_value(body), strict=request.app.state.settings.strict_fields)
    refuse_unsupported(body)
    items = input_items(body)
    context: list[dict[str, Any]] = []
    if body.previous_response_id:
        previous = await store.get(body.previous_response_id)
        if previous is None:
            raise APIError(
                404,
                f"Previous response with id '{body.previous_response_id}' not found (it was never stored, "
                f"was deleted, or has expired).",
                param="previous_response_id",
                code="previous_response_not_found",
            )
        context = previous.conversation()
    chat_body = chat_request(body, [*context, *items])
    request_id: str = request.scope["state"]["request_id"]
    try:
        chat = await open_chat_stream(request.app.state.upstreams.get(Modality.TEXT), chat_body, request_id)
    except APIError as exc:
        raise renamed(exc, _PARAMS) from None
    builder = ResponseBuilder(_base(new_id("resp"), body), namespaces(body.tools))
    answer = _Answer(store, builder, chat, body, items, context)
    if not body.stream:
        result = await answer.complete(request)
        if result is None:
            return Response(status_code=499)  # nginx's "client closed request": nobody reads it
        return JSONResponse(result)
    inflight: InFlightResponses = request.app.state.responses_inflight
    entry = inflight.add(builder)

    async def cleanup() -> None:
        inflight.remove(entry)
        await chat.close()

    return EventStream(answer.stream(entry), cleanup)


async def _retrieve(request: Request, response_id: str) -> dict[str, Any]:
    entry = request.app.state.responses_inflight.get(response_id)
    if entry is not None:
        return dict(entry.builder.response)
    record = await request.app.state.response_store.get(response_id)
    if record is None:
        raise _not_found(response_id)
    return record.response


def add_responses_routes(app: FastAPI, settings: Settings) -> None:
    app.state.response_store = ResponseStore(settings)
    app.state.responses_inflight = InFlightResponses()
    api = APIRouter(dependencies=[Depends(require_api_key)] if settings.api_keys else [], tags=["responses"])
    limit = body_limit(settings, router_route("createResponse"))

    async def create_response(request: Request) -> Response:
        """The Responses API on the text models: `input` items become the chat conversation (after the
        stored one when `previous_response_id` is given), function tools and `text.format` are
        grammar-constrained as in chat. With `store` (the default) the response is kept for
        `NEXA_ROUTER_RESPONSES_TTL_S`. Fields accepted but not acted on are named in the
        `X-Nexa-Ignored-Fields` header."""
        return await _create(request, limit)

    async def get_response(request: Request, response_id: str) -> dict[str, Any]:
        return await _retrieve(request, response_id)

    async def list_input_items(
        request: Request,
        response_id: str,
        limit: int = Query(default=20, ge=1, le=100),
        order: Literal["asc", "desc"] = "desc",
        after: str | None = None,
    ) -> InputItemList:
        record = await request.app.state.response_store.get(response_id)
        if record is None:
            raise _not_found(response_id)
        items = record.input_items if order == "asc" else list(reversed(record.input_items))
        if after is not None:
            at = next((i for i, item in enumerate(items) if item.get("id") == after), None)
            if at is None:
                raise APIError(400, f"No input item with id '{after}' in this response.", param="after")
            items = items[at + 1 :]
        page = items[:limit]
        return InputItemList(
            data=page,
            first_id=page[0]["id"] if page else None,
            last_id=page[-1]["id"] if page else None,
            has_more=len(items) > limit,
        )

    async def delete_response(request: Request, response_id: str) -> DeletedResponse:
        if not await request.app.state.response_store.delete(response_id):
            raise _not_found(response_id)
        return DeletedResponse(id=response_id)

    async def cancel_response(request: Request, response_id: str) -> dict[str, Any]:
        """Stops a streamed response this router is generating: its stream ends with status `cancelled`
        (in a `response.incomplete` event) and the partial response is stored. Responses that have
        finished cannot be cancelled (400)."""
        entry: InFlight | None = request.app.state.responses_inflight.get(response_id)
        if entry is not None:
            entry.cancel.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(entry.finished.wait(), _CANCEL_WAIT_S)
            return dict(entry.builder.response)
        record = await request.app.state.response_store.get(response_id)
        if record is None:
            raise _not_found(response_id)
        raise APIError(
            400,
            f"Response '{response_id}' has already finished (status {record.response.get('status')}); only a "
            f"response that is still streaming can be cancelled.",
            param="response_id",
            code="response_not_cancellable",
        )

    add_route(api, "createResponse", create_response, _STREAMS)
    add_route(api, "getResponse", get_response, error_responses(401, 404, 503))
    add_route(api, "deleteResponse", delete_response, error_responses(401, 404, 503))
    add_route(api, "listInputItems", list_input_items, error_responses(400, 401, 404, 503))
    add_route(api, "cancelResponse", cancel_response, error_responses(400, 401, 404, 503))
    app.include_router(api)
