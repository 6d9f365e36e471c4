"""`nexa server --local onnx smollm2`: the text API on onnxruntime-genai, through the router,
with the same routes, errors and streaming as the GGUF backend."""

from __future__ import annotations

import httpx
import openai
import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]


def test_models_lists_the_onnx_backend(onnx_http: httpx.Client) -> None:
    response = onnx_http.get("/v1/models")
    assert response.status_code == 200
    cards = {card["id"]: card for card in response.json()["data"]}
    assert cards["smollm2-onnx"]["backend"] == "onnx"
    assert cards["smollm2-onnx"]["modality"] == "text"


def test_chat_answers_through_the_router(onnx_oai: openai.OpenAI) -> None:
    reply = onnx_oai.chat.completions.create(
        model="smollm2-onnx",
        messages=QUESTION,
        max_tokens=24,
        temperature=0,  # type: ignore[arg-type]
    )
    assert "Paris" in (reply.choices[0].message.content or "")
    assert reply.model == "smollm2-onnx"
    assert reply.usage is not None and 0 < reply.usage.completion_tokens <= 24


def test_chat_streams_through_the_router(onnx_oai: openai.OpenAI) -> None:
    stream = onnx_oai.chat.completions.create(
        model="smollm2-onnx",
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=24,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    assert "Paris" in "".join(pieces)
    assert sum(1 for p in pieces if p) > 3  # token by token, not one block
    assert finish in ("stop", "length")
    assert usage is not None and usage.completion_tokens >= sum(1 for p in pieces if p)


def test_completion_stops_at_max_tokens(onnx_http: httpx.Client) -> None:
    response = onnx_http.post(
        "/v1/completions", json={"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == 5
    assert body["result"] == body["choices"][0]["text"] and body["result"].strip()


def test_chat_logprobs(onnx_oai: openai.OpenAI) -> None:
    reply = onnx_oai.chat.completions.create(
        model="smollm2-onnx",
        messages=QUESTION,  # type: ignore[arg-type]
        max_tokens=3,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    content = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert content is not None and len(content) == 3
    for token in content:
        assert token.logprob <= 0
        # Greedy decoding picks the most likely token, so it heads its own alternatives.
        assert token.top_logprobs[0].token == token.token


@pytest.mark.parametrize(
    "extra",
    [
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]},
        {"response_format": {"type": "json_object"}},
        {"min_p": 0.1},
    ],
    ids=["tools", "response_format", "min_p"],
)
def test_unsupported_features_are_refused_with_a_400(onnx_http: httpx.Client, extra: dict[str, object]) -> None:
    response = onnx_http.post("/v1/chat/completions", json={"messages": QUESTION, "max_tokens": 4, **extra})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "unsupported_by_backend"
    assert "ONNX backend does not support" in error["message"]


def test_function_calling_is_refused_with_a_400(onnx_http: httpx.Client) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    response = onnx_http.post("/v1/function-calling", json={"messages": QUESTION, "tools": [tool]})
    assert response.status_code == 400
    assert "grammar-constrained" in response.json()["error"]["message"]


@pytest.mark.parametrize("extra", [{"ignore_eos": True}, {"min_tokens": 20}])
def test_ignore_eos_and_min_tokens_are_honoured_on_onnx(onnx_http: httpx.Client, extra: dict[str, object]) -> None:
    # "Answer in one sentence" ends well before 20 tokens unless end-of-text is held back.
    body = {"model": "smollm2-onnx", "messages": QUESTION, "max_tokens": 20, "temperature": 0, **extra}
    answer = onnx_http.post("/v1/chat/completions", json=body).json()
    assert answer["usage"]["completion_tokens"] == 20, answer
    assert answer["choices"][0]["finish_reason"] == "length"
