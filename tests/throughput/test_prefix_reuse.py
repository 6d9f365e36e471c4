"""Prefix reuse: a shared system prompt or the earlier turns of a conversation are taken from the
KV cache instead of evaluated again, the answer is the same as with reuse off (temperature 0),
and `usage.prompt_tokens_details.cached_tokens` says how many tokens were reused."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from support import sse_events
from throughput_helpers import COUNTING, read_metric

SYSTEM = (
    "You are a helpful assistant for a bakery. You answer questions about bread, cakes and pastries "
    "in two sentences or fewer, you never invent prices, and you always suggest one of the day's "
    "specials: rye loaf, lemon tart or almond croissant."
)
QUESTIONS = ["What goes well with coffee?", "Do you have anything without gluten?", "What is sourdough?"]


@pytest.fixture(scope="module")
def no_reuse_url(start_text: Callable[..., str]) -> str:
    return start_text({"NEXA_TEXT_PREFIX_CACHE": "false"}, name="text-no-prefix-cache")


def _chat(messages: list[dict[str, str]], **extra: Any) -> dict[str, Any]:
    return {"messages": messages, "temperature": 0, "max_tokens": 40, **extra}


async def _ask(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/v1/chat/completions", json=body)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _cached(answer: dict[str, Any]) -> int:
    return int(answer["usage"]["prompt_tokens_details"]["cached_tokens"])


def _text(answer: dict[str, Any]) -> str:
    return str(answer["choices"][0]["message"]["content"])


async def test_a_shared_system_prompt_is_evaluated_once(default_url: str, no_reuse_url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=default_url, timeout=300) as reuse,
        httpx.AsyncClient(base_url=no_reuse_url, timeout=300) as plain,
    ):
        system = {"role": "system", "content": SYSTEM}
        warm = await _ask(reuse, _chat([system, {"role": "user", "content": "Hello."}]))
        system_tokens = warm["usage"]["prompt_tokens"] - 10  # the user turn and its markers are few
        # One after the other, then all at once: each reuses the system prompt someone evaluated.
        one_by_one = [await _ask(reuse, _chat([system, {"role": "user", "content": q}])) for q in QUESTIONS]
        together = await asyncio.gather(
            *(_ask(reuse, _chat([system, {"role": "user", "content": q}])) for q in QUESTIONS)
        )
        without = [await _ask(plain, _chat([system, {"role": "user", "content": q}])) for q in QUESTIONS]

    for reused_alone, reused_together, evaluated in zip(one_by_one, together, without, strict=True):
        assert _cached(reused_alone) >= system_tokens
        assert _cached(reused_together) >= system_tokens
        assert _cached(evaluated) == 0
        assert _text(reused_alone) == _text(evaluated)
        assert _text(reused_together) == _text(evaluated)
        assert reused_alone["usage"]["prompt_tokens"] == evaluated["usage"]["prompt_tokens"]


async def test_a_growing_conversation_reuses_its_earlier_turns(default_url: str, no_reuse_url: str) -> None:
    async with (
        httpx.AsyncClient(base_url=default_url, timeout=300) as reuse,
        httpx.AsyncClient(base_url=no_reuse_url, timeout=300) as plain,
    ):
        history: list[dict[str, str]] = [{"role": "user", "content": "Tell me about the moon."}]
        for turn in ("And the sun?", "Which one is bigger?"):
            reused = await _ask(reuse, _chat(history))
            evaluated = await _ask(plain, _chat(history))
            assert _text(reused) == _text(evaluated)
            history += [{"role": "assistant", "content": _text(reused)}, {"role": "user", "content": turn}]
        before = reused["usage"]["prompt_tokens"]
        # Streamed, with usage: the last turn reuses at least everything the previous prompt held.
        body = _chat(history, stream=True, stream_options={"include_usage": True})
        async with reuse.stream("POST", "/v1/chat/completions", json=body) as response:
            assert response.status_code == 200
            await response.aread()
            events = sse_events(response.text)
        streamed = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1] if e["choices"])
        evaluated = await _ask(plain, _chat(history))
    usage = events[-2]["usage"]
    assert usage["prompt_tokens_details"]["cached_tokens"] >= before - 1
    assert usage["prompt_tokens_details"]["cached_tokens"] < usage["prompt_tokens"]
    assert streamed == _text(evaluated)
    assert _cached(evaluated) == 0


async def test_completions_report_cached_tokens_too(default_url: str) -> None:
    prompt = "In the beginning the universe was created. This has made a lot of people very angry"
    async with httpx.AsyncClient(base_url=default_url, timeout=300) as client:
        first = (
            await client.post("/v1/completions", json={"prompt": prompt, "max_tokens": 4, "temperature": 0})
        ).json()
        again = (
            await client.post("/v1/completions", json={"prompt": prompt, "max_tokens": 4, "temperature": 0})
        ).json()
    prompt_tokens = again["usage"]["prompt_tokens"]
    # All but the last prompt token (its logits are needed to sample the first new token).
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] == prompt_tokens - 1
    assert again["choices"][0]["text"] == first["choices"][0]["text"]


async def test_identical_answers_decoded_together_leave_one_copy_in_the_cache(
    no_reuse_url: str, start_text: Callable[..., str]
) -> None:
    # A service of its own: what the cache holds depends on everything it has answered.
    url = start_text({}, name="text-copies")
    # Counting: no near ties between the two best tokens, so every layout of the cache gives the
    # same greedy answer (see services/text/README.md, Reproducibility).
    body = {"prompt": COUNTING, "temperature": 0, "max_tokens": 24}
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        together = await asyncio.gather(*(client.post("/v1/completions", json=body) for _ in range(4)))
        assert all(r.status_code == 200 for r in together), [r.text for r in together]
        texts = {r.json()["choices"][0]["text"] for r in together}
        held_after_burst = await read_metric(client, "nexa_text_kv_held_sequences")
        again = (await client.post("/v1/completions", json=body)).json()
        held_after_next = await read_metric(client, "nexa_text_kv_held_sequences")
    async with httpx.AsyncClient(base_url=no_reuse_url, timeout=300) as plain:
        evaluated = (await plain.post("/v1/completions", json=body)).json()
    # The four slots keep their (equal) tokens until the next sequence is placed; then the copies
    # go, and the next request still reuses the prompt from the one left.
    assert held_after_burst == 4
    assert held_after_next <= len(texts) < 4
    assert again["usage"]["prompt_tokens_details"]["cached_tokens"] == again["usage"]["prompt_tokens"] - 1
    assert again["choices"][0]["text"] == evaluated["choices"][0]["text"]
