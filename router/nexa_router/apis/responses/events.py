"""Chat completion chunks → the Responses API's event sequence, building the response as it goes.

One builder serves both answers: a streamed request sends its events as they come, a plain one
runs the same builder to its end and answers the final response object. The text service's output
is either text (one `message` item) or a tool call (one `function_call` item); text followed by a
call would close the message first, so each item's events stay in order.
"""

from __future__ import annotations

import time
from typing import Any

from nexa_common.errors import APIError

from .conversation import new_id

Event = tuple[str, dict[str, Any]]


class ResponseBuilder:
    def __init__(self, response: dict[str, Any], namespaces: dict[str, tuple[str, str]] | None = None) -> None:
        self.response = response
        self.namespaces = namespaces or {}
        """Qualified function names of namespaced tools → (namespace, name), for the calls' items."""
        self.sequence = 0
        self.started = False
        self._message: dict[str, Any] | None = None
        self._text: list[str] = []
        self._call: dict[str, Any] | None = None
        self._finish: str | None = None
        self._ending: str | None = None

    @property
    def done(self) -> bool:
        return self.response["status"] != "in_progress"

    def _event(self, kind: str, **fields: Any) -> Event:
        event = {"type": kind, **fields, "sequence_number": self.sequence}
        self.sequence += 1
        return kind, event

    def _snapshot(self) -> dict[str, Any]:
        return {**self.response, "output": list(self.response["output"])}

    def start(self) -> list[Event]:
        if self.started:
            return []
        self.started = True
        return [
            self._event("response.created", response=self._snapshot()),
            self._event("response.in_progress", response=self._snapshot()),
        ]

    def feed(self, chunk: dict[str, Any]) -> list[Event]:
        if isinstance(chunk.get("model"), str) and not self.started:
            self.response["model"] = chunk["model"]
        events = self.start()
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            prompt, completion = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
            self.response["usage"] = {
                "input_tokens": prompt,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens": completion,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt + completion,
            }
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                events += self._text_delta(delta["content"])
            for call in delta.get("tool_calls") or []:
                events += self._call_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def _text_delta(self, text: str) -> list[Event]:
        events = self._close_call() if self._call is not None else []
        if self._message is None:
            self._message = {
                "id": new_id("msg"),
                "type": "message",
                "status": "in_progress",
                "role": "assistant",
                "content": [],
            }
            self._text = []
            index = len(self.response["output"])
            self.response["output"].append(self._message)
            events.append(self._event("response.output_item.added", output_index=index, item=dict(self._message)))
            events.append(
                self._event(
                    "response.content_part.added",
                    item_id=self._message["id"],
                    output_index=index,
                    content_index=0,
                    part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
                )
            )
        self._text.append(text)
        events.append(
            self._event(
                "response.output_text.delta",
                item_id=self._message["id"],
                output_index=self.response["output"].index(self._message),
                content_index=0,
                delta=text,
                logprobs=[],
            )
        )
        return events

    def _call_delta(self, call: dict[str, Any]) -> list[Event]:
        function = call.get("function") or {}
        events: list[Event] = []
        if call.get("id") or self._call is None:
            events += self._close_open()
            name = function.get("name") or ""
            self._call = {
                "id": new_id("fc"),
                "type": "function_call",
                "status": "in_progress",
                "call_id": call.get("id") or new_id("call"),
                "name": name,
                "arguments": "",
            }
            if name in self.namespaces:
                self._call["namespace"], self._call["name"] = self.namespaces[name]
            self.response["output"].append(self._call)
            index = len(self.response["output"]) - 1
            events.append(self._event("response.output_item.added", output_index=index, item=dict(self._call)))
        arguments = function.get("arguments") or ""
        if arguments:
            self._call["arguments"] += arguments
            events.append(
                self._event(
                    "response.function_call_arguments.delta",
                    item_id=self._call["id"],
                    output_index=self.response["output"].index(self._call),
                    delta=arguments,
                )
            )
        return events

    def _close_open(self) -> list[Event]:
        return self._close_message() + self._close_call()

    def _item_status(self) -> str:
        # An item cut short (token limit, cancel, failure) is incomplete; one closed by the next is complete.
        ending_early = self._ending not in (None, "completed")
        return "incomplete" if ending_early or self._finish == "length" else "completed"

    def _close_message(self) -> list[Event]:
        message = self._message
        if message is None:
            return []
        self._message = None
        index = self.response["output"].index(message)
        text = "".join(self._text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        message["content"] = [part]
        message["status"] = self._item_status()
        item_id = message["id"]
        return [
            self._event(
                "response.output_text.done",
                item_id=item_id,
                output_index=index,
                content_index=0,
                text=text,
                logprobs=[],
            ),
            self._event("response.content_part.done", item_id=item_id, output_index=index, content_index=0, part=part),
            self._event("response.output_item.done", output_index=index, item=dict(message)),
        ]

    def _close_call(self) -> list[Event]:
        call = self._call
        if call is None:
            return []
        self._call = None
        index = self.response["output"].index(call)
        call["status"] = self._item_status()
        return [
            self._event(
                "response.function_call_arguments.done",
                item_id=call["id"],
                output_index=index,
                name=call["name"],
                arguments=call["arguments"],
            ),
            self._event("response.output_item.done", output_index=index, item=dict(call)),
        ]

    def _end(self, status: str) -> list[Event]:
        self._ending = status
        events = self.start() + self._close_open()
        self.response["status"] = status
        self.response["completed_at"] = int(time.time())
        return events

    def finish(self) -> list[Event]:
        """The stream ended normally: `response.completed`, or `response.incomplete` at the token limit."""
        if self._finish == "length":
            events = self._end("incomplete")
            self.response["incomplete_details"] = {"reason": "max_output_tokens"}
            return [*events, self._event("response.incomplete", response=self._snapshot())]
        events = self._end("completed")
        return [*events, self._event("response.completed", response=self._snapshot())]

    def cancel(self) -> list[Event]:
        """Stopped by `POST /v1/responses/{id}/cancel`: status `cancelled`, sent as a `response.incomplete`
        (the event list has no cancelled event; the status says why)."""
        events = self._end("cancelled")
        return [*events, self._event("response.incomplete", response=self._snapshot())]

    def fail(self, error: APIError) -> list[Event]:
        """Generation failed after the stream began: an `error` event, then `response.failed`."""
        events = self._end("failed")
        code = error.code or "server_error"
        self.response["error"] = {"code": code, "message": error.message}
        return [
            *events,
            self._event("error", code=code, message=error.message, param=error.param),
            self._event("response.failed", response=self._snapshot()),
        ]
