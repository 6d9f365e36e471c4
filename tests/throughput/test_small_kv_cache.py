"""The slots share one KV cache: when the sequences running together need more cells than it
has, the newest waits for room and resumes where it was, so every request still gets its whole
answer, the same as alone."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from throughput_helpers import COUNTING

N_CTX = 256


@pytest.fixture(scope="module")
def small_url(start_text: Callable[..., str]) -> str:
    # Four slots in 256 cells: four 200-token answers cannot all be in the cache at once.
    env = {"NEXA_TEXT_N_CTX": str(N_CTX), "NEXA_TEXT_MAX_CONCURRENCY": "4", "NEXA_TEXT_QUEUE_SIZE": "4"}
    return start_text(env, name="text-small-kv")


async def test_sequences_that_outgrow_the_shared_cache_still_finish_whole(small_url: str) -> None:
    prompts = [f"{COUNTING} {i}" for i in range(4)]  # distinct prompts: nothing shared to save cells

    def body(prompt: str) -> dict[str, object]:
        return {"prompt": prompt, "temperature": 0, "max_tokens": 200}

    async with httpx.AsyncClient(base_url=small_url, timeout=600) as client:
        alone = [(await client.post("/v1/completions", json=body(p))).json() for p in prompts]
        together = await asyncio.wait_for(
            asyncio.gather(*(client.post("/v1/completions", json=body(p)) for p in prompts)), 600
        )
        assert (await client.get("/health")).status_code == 200
    for solo, response in zip(alone, together, strict=True):
        assert response.status_code == 200, response.text
        answer = response.json()
        assert answer["usage"]["completion_tokens"] == solo["usage"]["completion_tokens"]
        assert answer["choices"][0]["text"] == solo["choices"][0]["text"]
        assert answer["usage"]["prompt_tokens"] + answer["usage"]["completion_tokens"] <= N_CTX
