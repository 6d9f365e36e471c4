"""Requests the text tests share (the seed's examples, verbatim)."""

from __future__ import annotations

import json
from typing import Any

SEED_COMPLETION = {
    "prompt": "Tell me a story",
    "temperature": 1,
    "max_new_tokens": 16,  # the seed says 128; fewer keeps the suite fast
    "top_k": 50,
    "top_p": 1,
    "stop_words": ["string"],
}

SEED_CHAT = {
    "messages": [{"role": "user", "content": "Tell me a story"}],
    "max_tokens": 16,
    "temperature": 0.1,
    "stream": False,
    "stop_words": [],
}

USER_DETAIL = {
    "type": "function",
    "function": {
        "name": "UserDetail",
        "parameters": {
            "properties": {
                "name": {"description": "The user's name", "type": "string"},
                "age": {"description": "The user's age", "type": "integer"},
            },
            "required": ["name", "age"],
            "type": "object",
        },
    },
}

SEED_FUNCTION_CALLING = {
    "messages": [{"role": "user", "content": "Extract Jason is 25 years old"}],
    "tools": [USER_DETAIL],
    "tool_choice": "auto",
}


def sse_events(body: str) -> list[Any]:
    """The `data:` payloads of an event stream, parsed; `[DONE]` stays a string."""
    events: list[Any] = []
    for line in body.splitlines():
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events


def metric(text: str, name: str) -> float:
    """The sum of a metric's samples in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total
