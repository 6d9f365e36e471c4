"""The batched engine (NEXA_TEXT_MAX_CONCURRENCY > 1): streams run together without disturbing one
another, each keeps its own sampling and grammar, a client that leaves frees its slot, and the
bounded queue still answers 429 beyond what it holds."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
from support import metric

# A prompt SmolLM2 continues for hundreds of tokens at temperature 0, without an end token.
COUNTING = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0}
SHORT = {"prompt": "The capital of France is", "temperature": 0, "max_tokens": 8}


@pytest.fixture(scope="module")
def batched_url(text_service: Callable[..., str]) -> str:
    return text_service({"NEXA_TEXT_MAX_CONCURRENCY": "2", "NEXA_TEXT_QUEUE_SIZE": "1"}, name="text-batched")


def _tokens_generated(client: httpx.Client) -> float:
    return metric(client.get("/metrics").text, "nexa_text_tokens_generated_total")


async def test_a_second_stream_runs_beside_the_first_and_matches_its_solo_output(batched_url: str) -> None:
    async with httpx.AsyncClient(base_url=batched_url, timeout=120.0) as client:
        solo = await client.post("/v1/completions", json=SHORT)
        assert solo.status_code == 200, solo.text
        before = metric((await client.get("/metrics")).text, "nexa_text_tokens_generated_total")

        events: list[str] = []
        body = {**COUNTING, "max_tokens": 1500, "stream": True}
        async with client.stream("POST", "/v1/completions", json=body) as long_stream:
            assert long_stream.status_code == 200
            lines = long_stream.aiter_lines()
            async for line in lines:  # wait until the long sequence is generating
                if line.startswith("data: "):
                    break
            beside = await client.post("/v1/completions", json=SHORT)
            events.append("short done")
            async for line in lines:  # the long one is still running: it was neither queued nor cut
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    assert chunk["choices"][0]["finish_reason"] is None
                    events.append("long token")
                    break
        # Leaving mid-stream (the context manager closed the connection) frees the slot.
        assert beside.status_code == 200, beside.text
        assert events == ["short done", "long token"]
        # Decoding beside another sequence changes nothing in this one's output.
        assert beside.json()["choices"][0]["text"] == solo.json()["choices"][0]["text"]

        follow_up = await client.post("/v1/completions", json=SHORT)
        assert follow_up.status_code == 200
        after = metric((await client.get("/metrics")).text, "nexa_text_tokens_generated_total")
        assert after - before < 1500  # the abandoned sequence stopped long before its max_tokens


async def test_grammar_and_free_text_sequences_decode_together(batched_url: str) -> None:
    async with httpx.AsyncClient(base_url=batched_url, timeout=120.0) as client:
        json_body = {
            "messages": [{"role": "user", "content": "Give the name and age of a fictional person."}],
            "response_format": {"type": "json_object"},
            "max_tokens": 40,
            "temperature": 0.7,
            "seed": 5,
        }
        free_body = {"messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 16, "temperature": 0}
        constrained, free = await asyncio.wait_for(
            asyncio.gather(
                client.post("/v1/chat/completions", json=json_body),
                client.post("/v1/chat/completions", json=free_body),
            ),
            120,
        )
    assert constrained.status_code == 200 and free.status_code == 200, (constrained.text, free.text)
    content = constrained.json()["choices"][0]["message"]["content"]
    if constrained.json()["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(content), dict)
    else:  # cut by max_tokens: still the start of an object, never free text
        assert content.lstrip().startswith("{")
    assert free.json()["choices"][0]["message"]["content"]
    assert "{" not in free.json()["choices"][0]["message"]["content"][:1]


async def test_beyond_slots_and_queue_the_answer_is_429(batched_url: str) -> None:
    # Two slots run, one request waits; the next is turned away.
    body = {**COUNTING, "max_tokens": 1500, "stream": True}
    limits = httpx.Limits(max_connections=8)
    async with httpx.AsyncClient(base_url=batched_url, timeout=120.0, limits=limits) as client:
        async with (
            client.stream("POST", "/v1/completions", json=body) as first,
            client.stream("POST", "/v1/completions", json=body) as second,
        ):
            # Kept: a discarded line iterator would close its connection.
            iterators = [first.aiter_lines(), second.aiter_lines()]
            for running, lines in zip((first, second), iterators, strict=True):
                assert running.status_code == 200
                async for line in lines:  # generating, side by side
                    if line.startswith("data: "):
                        break
            queued = asyncio.create_task(client.post("/v1/completions", json=SHORT))
            for _ in range(100):  # until it is in the queue (bounded)
                if metric((await client.get("/metrics")).text, "nexa_text_queue_depth") >= 1:
                    break
                await asyncio.sleep(0.1)
            rejected = await client.post("/v1/completions", json=SHORT)
            assert rejected.status_code == 429, rejected.text
            assert rejected.json()["error"]["code"] == "queue_full"
            assert int(rejected.headers["retry-after"]) >= 1
            assert not queued.done()
        # The two streams' clients left: their slots go to the queued request, then to new ones.
        assert (await asyncio.wait_for(queued, 120)).status_code == 200
        after = await client.post("/v1/completions", json=SHORT)
        assert after.status_code == 200, after.text
