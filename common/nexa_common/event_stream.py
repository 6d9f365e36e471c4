"""A `text/event-stream` response that always releases what its request held (a queue slot, an
engine, a connection to a service) however the stream ends: finished, failed, or the client gone
(Starlette then cancels the generator, which may not get to its own cleanup). The text service's
streams and the router's Responses and Messages streams use it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("nexa.streaming")


class EventStream(StreamingResponse):
    def __init__(
        self,
        events: AsyncIterator[str] | AsyncIterator[bytes],
        cleanup: Callable[[], Awaitable[None]],
        headers: dict[str, str] | None = None,
    ) -> None:
        # No proxy buffering and no caching: each event must reach the client as it is sent.
        super().__init__(
            events,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no", **(headers or {})},
        )
        self._events = events
        self._cleanup = cleanup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (ClientDisconnect, OSError):
            log.info("client left during a stream")  # nothing to answer: nobody is listening
        finally:
            aclose = getattr(self._events, "aclose", None)
            if aclose is not None:
                await aclose()
            await self._cleanup()
