"""Server-sent events in OpenAI's framing, and a streamed response that always releases what
its request held (the queue slot, the engine) however the stream ends."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from pydantic import BaseModel
from starlette.requests import ClientDisconnect
from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

log = logging.getLogger("nexa.text.streaming")

DONE = "data: [DONE]\n\n"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def event(payload: BaseModel | dict[str, Any]) -> str:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    # A delta carries only what changed, as OpenAI sends it (`{"content": "Hi"}`, not nulls for
    # the role and tool calls); the chunk's own fields (finish_reason, usage) stay, null or not.
    for choice in data.get("choices", []):
        if "delta" in choice:
            choice["delta"] = _without_nulls(choice["delta"])
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"


class EventStream(StreamingResponse):
    """`text/event-stream` whose `cleanup` runs when the stream ends, fails or the client leaves."""

    def __init__(
        self, events: AsyncIterator[str], cleanup: Callable[[], Awaitable[None]], headers: dict[str, str] | None = None
    ) -> None:
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
