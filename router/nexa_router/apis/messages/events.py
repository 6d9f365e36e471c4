"""Chat completion chunks → Anthropic's message event sequence, building the message as it goes.

`message_start` (and a `ping`), then per content block `content_block_start`, deltas
(`text_delta`, `input_json_delta`) and `content_block_stop`, then `message_delta` with the
stop reason and usage, and `message_stop`; a failure after the start is an `error` event. A plain
request runs the same builder to its end and answers the final message.

The input token count is known only when the text service's usage arrives at the end, so
`message_start` carries 0 and `message_delta` the real count (Anthropic's SDKs take it from there).
"""

from __future__ import annotations

import json
from typing import Any

from nexa_common.errors import APIError

from .errors import anthropic_type

Event = tuple[str, dict[str, Any]]
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


class MessageBuilder:
    def __init__(self, message_id: str, model: str) -> None:
        self.message: dict[str, Any] = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        self.started = False
        self._block: dict[str, Any] | None = None
        self._arguments: list[str] = []
        self._finish: str | None = None

    def start(self) -> list[Event]:
        if self.started:
            return []
        self.started = True
        start = {**self.message, "content": [], "usage": dict(self.message["usage"])}
        return [("message_start", {"type": "message_start", "message": start}), ("ping", {"type": "ping"})]

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if isinstance(chunk.get("model"), str) and not self.started:
            self.message["model"] = chunk["model"]
        events = self.start()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.message["usage"] = {
                "input_tokens": int(usage.get("prompt_tokens", 0)),
                "output_tokens": int(usage.get("completion_tokens", 0)),
            }
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._tool(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def _open(self, block: dict[str, Any]) -> list[Event]:
        events = self._close()
        self._block = block
        self.message["content"].append(block)
        index = len(self.message["content"]) - 1
        return [
            *events,
            ("content_block_start", {"type": "content_block_start", "index": index, "content_block": dict(block)}),
        ]

    def _delta(self, delta: dict[str, Any]) -> Event:
        index = len(self.message["content"]) - 1
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}

    def _text(self, text: str) -> list[Event]:
        events = (
            []
            if self._block is not None and self._block["type"] == "text"
            else self._open({"type": "text", "text": ""})
        )
        assert self._block is not None
        self._block["text"] += text
        return [*events, self._delta({"type": "text_delta", "text": text})]

    def _tool(self, call: dict[str, Any]) -> list[Event]:
        function = call.get("function") or {}
        events: list[Event] = []
        if call.get("id") or self._block is None or self._block["type"] != "tool_use":
            events += self._open(
                {"type": "tool_use", "id": call.get("id") or "", "name": function.get("name") or "", "input": {}}
            )
            self._arguments = []
        arguments = function.get("arguments") or ""
        if arguments:
            self._arguments.append(arguments)
            events.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return events

    def _close(self) -> list[Event]:
        block = self._block
        if block is None:
            return []
        self._block = None
        if block["type"] == "tool_use":
            try:
                parsed = json.loads("".join(self._arguments) or "{}")
            except ValueError:
                parsed = {}  # cut short by max_tokens: the stop reason says so
            block["input"] = parsed if isinstance(parsed, dict) else {}
        index = self.message["content"].index(block)
        return [("content_block_stop", {"type": "content_block_stop", "index": index})]

    def finish(self) -> list[Event]:
        events = self.start() + self._close()
        self.message["stop_reason"] = _STOP_REASONS.get(self._finish or "stop", "end_turn")
        delta = {"stop_reason": self.message["stop_reason"], "stop_sequence": None}
        return [
            *events,
            ("message_delta", {"type": "message_delta", "delta": delta, "usage": dict(self.message["usage"])}),
            ("message_stop", {"type": "message_stop"}),
        ]

    def fail(self, error: APIError) -> list[Event]:
        """Generation failed after the stream began: Anthropic's `error` event ends the stream."""
        events = self.start() + self._close()
        body = {"type": anthropic_type(error.status), "message": error.message}
        return [*events, ("error", {"type": "error", "error": body})]
