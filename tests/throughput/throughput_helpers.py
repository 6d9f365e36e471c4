"""Requests and readers the throughput tests share (the stream and metrics readers are `support`'s)."""

from __future__ import annotations

import httpx
from support import metric

# A prompt SmolLM2 continues for hundreds of tokens at temperature 0, without an end token.
COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"


async def read_metric(client: httpx.AsyncClient, name: str) -> float:
    return metric((await client.get("/metrics")).text, name)
