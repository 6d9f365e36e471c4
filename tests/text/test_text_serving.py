"""Serving behaviour: FIFO order, queue overflow, clients that leave, context limits, bad input,
and the operational routes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from text_helpers import USER_DETAIL, metric, sse_events

# A prompt SmolLM2 continues for hundreds of tokens at temperature 0, without an end token.
COUNTING = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "temperature": 0}


async def test_two_concurrent_streams_complete_in_order(text_url: str) -> None:
    client = openai.AsyncOpenAI(base_url=text_url + "/v1", api_key="x", timeout=120.0, max_retries=0)
    log: list[tuple[str, str]] = []

    async def stream(name: str, started: asyncio.Event | None) -> str:
        chunks = await client.chat.completions.create(
            model="smollm2",
            messages=[{"role": "user", "content": f"Tell me about {name}."}],
            max_tokens=12,
            temperature=0,
            stream=True,
        )
        finish = ""
        async for chunk in chunks:
            if started is not None:
                started.set()
            choice = chunk.choices[0]
            if choice.delta.content:
                log.append((name, "token"))
            if choice.finish_reason:
                finish = choice.finish_reason
                log.append((name, "end"))
        return finish

    first_running = asyncio.Event()
    first = asyncio.create_task(stream("cats", first_running))
    await asyncio.wait_for(first_running.wait(), 60)
    second = asyncio.create_task(stream("dogs", None))
    finishes = await asyncio.wait_for(asyncio.gather(first, second), 120)
    await client.close()

    assert all(f in ("stop", "length") for f in finishes)  # neither was interrupted
    names = [name for name, _ in log]
    # The second waited in the queue: all of the first, then all of the second.
    assert names == sorted(names, key=lambda n: n != "cats")
    assert log.count(("cats", "end")) == 1 and log.count(("dogs", "end")) == 1


def test_full_queue_answers_429_with_retry_after(text_service: Callable[..., str]) -> None:
    url = text_service({"NEXA_TEXT_QUEUE_SIZE": "0"}, name="text-no-queue")
    with httpx.Client(base_url=url, timeout=120.0) as client:
        body = {**COUNTING, "max_tokens": 2000, "stream": True}
        with client.stream("POST", "/v1/completions", json=body) as running:
            assert running.status_code == 200
            lines = running.iter_lines()  # kept: a discarded iterator would close the connection
            next(lines)  # it is generating: the only slot is taken
            rejected = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
        assert rejected.status_code == 429
        assert int(rejected.headers["retry-after"]) >= 1
        error = rejected.json()["error"]
        assert error["type"] == "rate_limit_error" and error["code"] == "queue_full"
        # Once the stream's client is gone, the slot is free again (within moments: bounded retries).
        for _ in range(50):
            after = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
            if after.status_code != 429:
                break
            time.sleep(0.2)
        assert after.status_code == 200, after.text


def _tokens_generated(client: httpx.Client) -> float:
    return metric(client.get("/metrics").text, "nexa_text_tokens_generated_total")


def test_disconnected_stream_frees_the_model(http: httpx.Client) -> None:
    before = _tokens_generated(http)
    with http.stream("POST", "/v1/completions", json={**COUNTING, "max_tokens": 1500, "stream": True}) as stream:
        events = 0
        for line in stream.iter_lines():
            events += line.startswith("data: ")
            if events == 3:
                break  # leave mid-stream: closing the response drops the connection
    started = time.monotonic()
    follow_up = http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2, "temperature": 0})
    assert follow_up.status_code == 200
    assert time.monotonic() - started < 60  # generous: the abandoned stream alone would need 1500 tokens
    # The abandoned sequence stopped soon after its client left (the counter counts it too).
    assert _tokens_generated(http) - before < 100


def test_disconnected_plain_request_frees_the_model(text_url: str, http: httpx.Client) -> None:
    before = _tokens_generated(http)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(text_url + "/v1/completions", json={**COUNTING, "max_tokens": 1500}, timeout=1.5)
    follow_up = http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2, "temperature": 0})
    assert follow_up.status_code == 200
    assert _tokens_generated(http) - before < 400


def test_prompt_longer_than_context_is_400_with_counts(oai: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        oai.completions.create(model="smollm2", prompt="hello " * 9000, max_tokens=4)
    error = caught.value.body
    assert isinstance(error, dict)
    assert error["code"] == "context_length_exceeded" and error["param"] == "prompt"
    # The default context is what SmolLM2 was trained on: 8192 tokens.
    assert "9001 tokens" in error["message"] and "8192 tokens" in error["message"]


def test_completion_is_capped_by_the_room_left_in_the_context(text_service: Callable[..., str]) -> None:
    # A small explicit context (NEXA_TEXT_N_CTX), so filling it stays cheap.
    url = text_service({"NEXA_TEXT_N_CTX": "512"}, name="text-ctx-512")
    body = {"prompt": "hello " * 505, "max_tokens": 50, "temperature": 0}
    response = httpx.post(url + "/v1/completions", json=body, timeout=120)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"]["total_tokens"] <= 512
    assert answer["usage"]["completion_tokens"] == 512 - answer["usage"]["prompt_tokens"]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"prompt": "Hi", "temperature": 5}, "temperature"),
        ({"prompt": "Hi", "n": 2}, "n"),
        ({"prompt": "Hi", "max_tokens": 0}, "max_tokens"),
        ({"prompt": ["a", "b"]}, None),
        ({"prompt": "Hi", "stop": [""]}, "stop"),
    ],
)
def test_invalid_completion_parameters_are_400(http: httpx.Client, body: dict, param: str | None) -> None:  # type: ignore[type-arg]
    response = http.post("/v1/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if param:
        assert error["param"] is not None and error["param"].startswith(param)


def _deep(levels: int) -> dict:  # type: ignore[type-arg]
    schema: dict = {"type": "string"}  # type: ignore[type-arg]
    for _ in range(levels):
        schema = {"type": "array", "items": schema}
    return schema


def _tool(parameters: object) -> dict:  # type: ignore[type-arg]
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


@pytest.mark.parametrize(
    "parameters",
    [
        {"type": "object", "properties": {"xs": {"type": "array", "items": {"type": "integer"}, "minItems": 10**9}}},
        {"type": "object", "properties": {"s": {"type": "string", "pattern": "a{1000000}"}}},
        {"type": "object", "properties": {"x": {"$ref": "#/definitions/missing"}}},
        {"type": "object", "properties": {"x": {"$ref": "https://example.com/schema.json"}}},
        {"type": 7},
        {"type": "no-such-type"},
        {"type": "object", "properties": {"x": _deep(40)}},
    ],
    ids=[
        "huge-minItems",
        "huge-pattern-repeat",
        "missing-ref",
        "remote-ref",
        "type-not-string",
        "unknown-type",
        "too-deep",
    ],
)
def test_pathological_tool_schemas_are_400(http: httpx.Client, parameters: object) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [_tool(parameters)], "max_tokens": 4}
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] in ("invalid_schema", "invalid_value")
    assert "Traceback" not in error["message"] and ".py" not in error["message"]
    assert http.get("/health").status_code == 200


def test_tool_choice_naming_an_unknown_tool_is_400(http: httpx.Client) -> None:
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [USER_DETAIL],
        "tool_choice": {"type": "function", "function": {"name": "nope"}},
    }
    response = http.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    assert "nope" in response.json()["error"]["message"]


def test_ready_models_and_metrics(http: httpx.Client) -> None:
    ready = http.get("/ready")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    models = http.get("/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["smollm2"]
    assert models["data"][0]["modality"] == "text"
    http.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 3, "stream": True})
    page = http.get("/metrics").text
    for name in (
        "nexa_text_requests_total",
        "nexa_text_queue_depth",
        "nexa_text_time_to_first_token_seconds_count",
        "nexa_text_tokens_per_second_count",
        "nexa_text_tokens_generated_total",
    ):
        assert name in page
    assert metric(page, "nexa_text_time_to_first_token_seconds_count") >= 1


def test_stream_ends_with_done_after_finish(http: httpx.Client) -> None:
    response = http.post(
        "/v1/completions",
        json={"prompt": "Hi", "max_tokens": 3, "stream": True, "stream_options": {"include_usage": True}},
    )
    events = sse_events(response.text)
    assert events[-1] == "[DONE]"
    assert events[-2]["usage"]["completion_tokens"] == 3 and events[-2]["choices"] == []
    assert events[-3]["choices"][0]["finish_reason"] == "length"


def test_model_that_fails_to_load_reports_not_ready(text_service: Callable[..., str], tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"this is not a GGUF file" * 100)
    url = text_service({"NEXA_TEXT_MODEL": str(broken)}, name="text-broken", wait=False)
    deadline = time.monotonic() + 60
    with httpx.Client(base_url=url, timeout=5.0) as client:
        ready = None
        while time.monotonic() < deadline:
            try:
                ready = client.get("/ready")
            except httpx.TransportError:
                time.sleep(0.2)
                continue
            if ready.json().get("status") == "failed":
                break
            time.sleep(0.2)
        assert ready is not None and ready.status_code == 503
        assert ready.json()["status"] == "failed" and "broken.gguf" in ready.json()["detail"]
        refused = client.post("/v1/completions", json={"prompt": "Hi", "max_tokens": 2})
        assert refused.status_code == 503 and refused.json()["error"]["code"] == "model_failed"
        assert str(tmp_path) not in refused.text  # the reason names the file, not where it lives
        assert client.get("/health").status_code == 200


def test_chat_format_override(text_service: Callable[..., str]) -> None:
    # A llama-cpp-python format name replaces the GGUF's template; tool turns still get through.
    url = text_service({"NEXA_TEXT_CHAT_FORMAT": "chatml"}, name="text-chatml")
    messages = [
        {"role": "user", "content": "What is 6 times 7?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "multiply", "arguments": '{"a": 6, "b": 7}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "42"},
    ]
    with httpx.Client(base_url=url, timeout=60.0) as client:
        reply = client.post("/v1/chat/completions", json={"messages": messages, "max_tokens": 8, "temperature": 0})
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]
    assert reply.json()["usage"]["prompt_tokens"] > 20
