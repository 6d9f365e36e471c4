"""Under the default engine, requests decoded together each get exactly what they asked for:
their own sampling, grammar (a tool call, a JSON schema), stop sequences and length.

A greedy request beside others follows the same path as alone, token for token, up to a point
where the model's two best candidates are tied to within rounding: the engine keeps llama.cpp on
one attention kernel for every batch shape (batched_engine.py), but the order in which that
kernel sums a sequence's KV cells follows where the shared cache put them, and a near tie can go
either way. A divergence anywhere else (another sequence's logits, a lost token) fails the test.
Sampled requests are checked by what their settings must do: top_k 1 is greedy at any
temperature, a high temperature leaves the greedy path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
from support import sse_events
from throughput_helpers import COUNTING, read_metric

PERSON_SCHEMA = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city", "days"],
        },
    },
}

# Deterministic requests: alone or beside others, the answer must be the same, byte for byte.
NEAR_TIE = 0.5
"""Nats between the two best candidates below which a greedy choice may go either way."""

GREEDY_SHORT = (
    "/v1/completions",
    {"prompt": "The capital of France is", "temperature": 0, "max_tokens": 3, "logprobs": 2},
)
GREEDY_LONG = ("/v1/completions", {"prompt": COUNTING, "temperature": 0, "max_tokens": 60, "logprobs": 2})
SEEDED = (
    "/v1/completions",
    {"prompt": "Once upon a time", "temperature": 0.9, "top_p": 0.95, "seed": 7, "max_tokens": 24},
)
TOP_K_ONE = (
    "/v1/completions",
    {"prompt": COUNTING, "temperature": 1.5, "top_k": 1, "max_tokens": 60, "logprobs": 2},
)
HOT = ("/v1/completions", {"prompt": "Once upon a time", "temperature": 1.8, "top_k": 0, "max_tokens": 24, "seed": 3})
GREEDY_STORY = (
    "/v1/completions",
    {"prompt": "Once upon a time", "temperature": 0, "max_tokens": 24, "logprobs": 2},
)
PENALISED = (
    "/v1/completions",
    {"prompt": "Once upon a time", "temperature": 0, "repeat_penalty": 1.3, "presence_penalty": 0.5, "max_tokens": 20},
)
STOPPED = (
    "/v1/completions",
    {"prompt": COUNTING, "temperature": 0, "max_tokens": 80, "stop": ["15"], "logprobs": 2},
)
CHAT = (
    "/v1/chat/completions",
    {
        "messages": [{"role": "user", "content": "Name three colours."}],
        "temperature": 0,
        "max_tokens": 30,
        "logprobs": True,
        "top_logprobs": 2,
    },
)
JSON_SCHEMA = (
    "/v1/chat/completions",
    {
        "messages": [{"role": "user", "content": "Invent a person."}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "person", "schema": PERSON_SCHEMA}},
        "temperature": 0,
        "max_tokens": 60,
    },
)
TOOL = (
    "/v1/chat/completions",
    {
        "messages": [{"role": "user", "content": "What is the weather in Paris for the next 3 days?"}],
        "tools": [WEATHER_TOOL],
        "tool_choice": "required",
        "temperature": 0,
        "max_tokens": 60,
    },
)
LOGPROBS = (
    "/v1/completions",
    {"prompt": "The sky is", "temperature": 0, "max_tokens": 5, "logprobs": 3},
)
GREEDY = {
    "greedy_short": GREEDY_SHORT,
    "greedy_long": GREEDY_LONG,
    "greedy_story": GREEDY_STORY,
    "stopped": STOPPED,
    "chat": CHAT,
    "logprobs": LOGPROBS,
}
OTHERS = {
    "penalised": PENALISED,
    "json_schema": JSON_SCHEMA,
    "tool": TOOL,
    "seeded": SEEDED,
    "top_k_one": TOP_K_ONE,
    "hot": HOT,
}


def _path(body: dict[str, Any]) -> list[tuple[str, dict[str, float]]]:
    """Each generated token with the best candidates the model saw at its position."""
    logprobs = body["choices"][0]["logprobs"]
    if "content" in logprobs:  # chat's layout
        return [(e["token"], {t["token"]: t["logprob"] for t in e["top_logprobs"]}) for e in logprobs["content"]]
    return list(zip(logprobs["tokens"], logprobs["top_logprobs"], strict=True))


def _follows(alone: dict[str, Any], together: dict[str, Any]) -> None:
    """`together` took `alone`'s greedy path, or left it only at a near tie."""
    first, second = _path(alone), _path(together)
    for index, ((token, top), (other, _)) in enumerate(zip(first, second, strict=False)):
        if token == other:
            continue
        best = sorted(top.values(), reverse=True)
        assert other in top and best[0] - best[1] < NEAR_TIE, (
            f"left the greedy path at token {index}: {token!r} -> {other!r}"
        )
        return
    assert len(first) == len(second)
    assert alone["choices"][0]["finish_reason"] == together["choices"][0]["finish_reason"]


async def test_requests_decoded_together_get_what_each_asked_for(default_url: str) -> None:
    async with httpx.AsyncClient(base_url=default_url, timeout=300) as client:
        slots = await read_metric(client, "nexa_text_slots")
        assert slots >= 4, "the default engine should run several sequences at once"
        alone = {}
        for name, (path, body) in GREEDY.items():
            response = await client.post(path, json=body)
            assert response.status_code == 200, (name, response.text)
            alone[name] = response.json()

        async def post(path: str, body: dict[str, Any]) -> httpx.Response:
            return await client.post(path, json=body)

        requests = {**GREEDY, **OTHERS}
        together = await asyncio.wait_for(asyncio.gather(*(post(path, body) for path, body in requests.values())), 300)

    answers = {}
    for name, response in zip(requests, together, strict=True):
        assert response.status_code == 200, (name, response.text)
        answers[name] = response.json()
    for name in GREEDY:
        _follows(alone[name], answers[name])
    # Lengths: exactly max_tokens where nothing stopped them earlier.
    assert answers["greedy_short"]["usage"]["completion_tokens"] == 3
    assert answers["greedy_long"]["usage"]["completion_tokens"] == 60
    assert answers["penalised"]["usage"]["completion_tokens"] == 20
    assert answers["greedy_long"]["choices"][0]["finish_reason"] == "length"
    # The stop sequence ended the answer and never reached the client.
    stopped = answers["stopped"]["choices"][0]
    assert stopped["finish_reason"] == "stop" and "15" not in stopped["text"] and stopped["text"].rstrip().endswith(",")
    # The grammars held: the JSON matches its schema, the tool call names the tool with valid arguments.
    person = json.loads(answers["json_schema"]["choices"][0]["message"]["content"])
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    call = answers["tool"]["choices"][0]["message"]["tool_calls"][0]["function"]
    arguments = json.loads(call["arguments"])
    assert call["name"] == "get_weather"
    assert isinstance(arguments["city"], str) and isinstance(arguments["days"], int)
    assert answers["tool"]["choices"][0]["finish_reason"] == "tool_calls"
    # Free text beside the grammars stayed free text.
    assert not answers["chat"]["choices"][0]["message"]["content"].lstrip().startswith("{")
    assert len(answers["logprobs"]["choices"][0]["logprobs"]["top_logprobs"][0]) == 3
    # Sampling: each sequence's own chain, whatever the others use.
    text = {name: answers[name]["choices"][0]["text"] for name in ("seeded", "hot")}
    _follows(alone["greedy_long"], answers["top_k_one"])
    assert text["hot"] != answers["greedy_story"]["choices"][0]["text"]
    assert answers["seeded"]["usage"]["completion_tokens"] <= 24


async def test_streams_of_different_lengths_end_on_their_own_terms(default_url: str) -> None:
    lengths = [1, 5, 17, 40]

    async def stream(max_tokens: int) -> list[Any]:
        body = {
            "prompt": COUNTING,
            "temperature": 0,
            "max_tokens": max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        async with client.stream("POST", "/v1/completions", json=body) as response:
            assert response.status_code == 200
            await response.aread()
            return sse_events(response.text)

    async with httpx.AsyncClient(base_url=default_url, timeout=300) as client:
        results = await asyncio.wait_for(asyncio.gather(*(stream(n) for n in lengths)), 300)
    for max_tokens, events in zip(lengths, results, strict=True):
        assert events[-1] == "[DONE]"
        usage = events[-2]["usage"]
        assert usage["completion_tokens"] == max_tokens
        assert usage["prompt_tokens_details"]["cached_tokens"] >= 0
        assert events[-3]["choices"][0]["finish_reason"] == "length"
        assert "".join(e["choices"][0]["text"] for e in events[:-2])
