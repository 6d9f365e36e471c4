"""Requests and readers the throughput tests share."""

from __future__ import annotations

import json
from typing import Any

import httpx

# A prompt SmolLM2 continues for hundreds of tokens at temperature 0, without an end token.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"


def metric(text: str, name: str) -> float:
    """The sum of a metric's samples in a Prometheus text page."""
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and (line[len(name)] in " {"):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def read_metric(client: httpx.AsyncClient, name: str) -> float:
    return metric((await client.get("/metrics")).text, name)


def data_events(lines: list[str]) -> list[Any]:
    """The `data:` payloads of an event stream, parsed; `[DONE]` stays a string."""
    events: list[Any] = []
    for line in lines:
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events
