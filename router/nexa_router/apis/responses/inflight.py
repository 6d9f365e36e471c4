"""The streamed responses this router is generating right now, so `POST /v1/responses/{id}/cancel`
and `GET /v1/responses/{id}` can reach them before they are stored (one registry per app)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TypeVar

from .events import ResponseBuilder

T = TypeVar("T")


@dataclass
class InFlight:
    builder: ResponseBuilder
    cancel: asyncio.Event = field(default_factory=asyncio.Event)
    """Set by the cancel route; the stream then stops generating and ends as `cancelled`."""
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the stream has ended and its response is stored (the cancel route waits for it)."""


class InFlightResponses:
    def __init__(self) -> None:
        self._streams: dict[str, InFlight] = {}

    def add(self, builder: ResponseBuilder) -> InFlight:
        entry = InFlight(builder)
        self._streams[builder.response["id"]] = entry
        return entry

    def get(self, response_id: str) -> InFlight | None:
        return self._streams.get(response_id)

    def remove(self, entry: InFlight) -> None:
        self._streams.pop(entry.builder.response["id"], None)
        entry.finished.set()


async def until_set(items: AsyncIterator[T], stop: asyncio.Event) -> AsyncIterator[T]:
    """`items` until they end or `stop` is set, whichever comes first (a stop does not wait for the
    next token: the pending read is cancelled)."""
    stopped = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            step = asyncio.ensure_future(anext(items))
            done, _ = await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if step not in done:
                step.cancel()
                await asyncio.gather(step, return_exceptions=True)
                return
            try:
                item = step.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        stopped.cancel()
