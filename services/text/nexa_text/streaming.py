"""Server-sent events in OpenAI's framing (the response that carries them, releasing the queue slot
and the engine however the stream ends, is `nexa_common.event_stream.EventStream`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel

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


class EventTemplate:
    """An event in which one string field is all that changes from token to token (a chunk's
    content or text), made whole once: per token only that string is JSON-encoded, and the bytes
    are the same `event` makes. Building the pydantic chunk, dumping it and dropping its nulls was
    ~40% of the text service's event-loop time per streamed token (py-spy, one stream)."""

    _MARK = "@@nexa-field@@"

    def __init__(self, make: Callable[[str], str]) -> None:
        whole = make(self._MARK)
        quoted = json.dumps(self._MARK)
        if whole.count(quoted) != 1:
            raise ValueError("the template's field must appear exactly once")
        self._head, _, self._tail = whole.partition(quoted)

    def __call__(self, value: str) -> str:
        return self._head + json.dumps(value, ensure_ascii=False) + self._tail


HOLD_GAP_S = 0.050
"""A token that follows the previous one this closely may wait for the next before it is sent
(a single fast stream makes a token every ~6 ms on 2 cores, each of 8 streams one every ~35 ms)."""
MAX_HOLD_S = 0.015
"""Tokens are held together for this long at most, counted from the first of them (checked as each
token arrives: the oldest waits at most this plus one gap between tokens)."""


class WritePacer:
    """Puts the events of tokens that come fast in one write: each event stays its own `data:`
    line, only the writes (one socket send here, a read and a send in the router, a read in the
    client) are fewer. Per write, these cost the service, the router and the client ~0.4 ms of CPU
    on 2 cores, taken from llama.cpp's threads while they decode (profiled: half the service's
    event-loop time was the socket send). A single stream (a token every ~6 ms) goes out ~3 tokens
    per write, 8 streams (~35 ms) two per write; the first token never waits, nor does one that
    follows a pause."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._held = ""
        self._held_since = 0.0
        self._last = 0.0
        self._sent_text = False

    def offer(self, text: str) -> str:
        """What to write now for a token's events (possibly none, possibly the held ones too)."""
        now = self._clock()
        gap, self._last = now - self._last, now
        fast = gap < HOLD_GAP_S
        if self._held:
            if fast and now - self._held_since < MAX_HOLD_S:
                self._held += text
                return ""
            text, self._held = self._held + text, ""
            return text
        if text and self._sent_text and fast:
            self._held, self._held_since = text, now
            return ""
        self._sent_text = self._sent_text or bool(text)
        return text

    def flush(self) -> str:
        text, self._held = self._held, ""
        return text
