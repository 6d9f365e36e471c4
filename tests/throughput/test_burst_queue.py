"""A burst of 16 requests beyond the default engine's slots waits in the queue (no 5xx, no 429)
and is served in order of arrival."""

from __future__ import annotations

import asyncio
import time

import httpx
from throughput_helpers import COUNTING, read_metric

BURST = 16


async def _wait_for(client: httpx.AsyncClient, name: str, value: float) -> None:
    for _ in range(600):  # bounded: 60 s
        if await read_metric(client, name) >= value:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{name} never reached {value}")


async def test_a_burst_beyond_the_slots_queues_and_is_served_in_arrival_order(default_url: str) -> None:
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(base_url=default_url, timeout=600, limits=limits) as client:
        slots = int(await read_metric(client, "nexa_text_slots"))
        assert slots > 1
        first_token: dict[int, float] = {}
        statuses: dict[int, int] = {}
        lengths: dict[int, int] = {}

        async def request(index: int, max_tokens: int) -> None:
            body = {"prompt": COUNTING, "temperature": 0, "max_tokens": max_tokens, "ignore_eos": True, "stream": True}
            async with client.stream("POST", "/v1/completions", json=body) as response:
                statuses[index] = response.status_code
                tokens = 0
                async for line in response.aiter_lines():
                    if line.startswith("data: {") and '"text":""' not in line.replace(" ", ""):
                        tokens += 1
                        first_token.setdefault(index, time.perf_counter())
                lengths[index] = tokens

        tasks = []
        # Fill every slot; the running sequences end one at a time (6 tokens apart), so each
        # freed slot goes to one waiting request. The first ones are long enough to still run
        # while the rest of the burst is sent (a quiet machine decodes 40 tokens in about a
        # second), the waiting ones long enough to outlast every first sequence, so they too end
        # (and hand their slots on) one at a time: each waiting request starts at a step of its own.
        for index in range(slots):
            tasks.append(asyncio.create_task(request(index, 200 + 6 * index)))
            await _wait_for(client, "nexa_text_running_sequences", index + 1)
        for index in range(slots, slots + BURST):
            tasks.append(asyncio.create_task(request(index, 320)))
            await _wait_for(client, "nexa_text_queue_depth", index - slots + 1)
        await asyncio.wait_for(asyncio.gather(*tasks), 600)

    assert all(status == 200 for status in statuses.values()), statuses
    assert len(statuses) == slots + BURST
    queued = list(range(slots, slots + BURST))
    # Every request got its tokens (a streamed text chunk per token here).
    assert all(lengths[i] >= 1 for i in statuses)
    order = sorted(queued, key=lambda i: first_token[i])
    assert order == queued, f"waiting requests started in the order {order}"
