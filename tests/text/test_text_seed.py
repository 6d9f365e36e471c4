"""The seed's three example requests, sent as the seed documents them, answered in the seed's shapes."""

from __future__ import annotations

import json

import httpx
from text_helpers import SEED_CHAT, SEED_COMPLETION, SEED_FUNCTION_CALLING


def test_seed_completion_has_result_and_openai_fields(http: httpx.Client) -> None:
    response = http.post("/v1/completions", json=SEED_COMPLETION)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body["result"], str) and body["result"].strip()
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == body["result"]
    assert body["choices"][0]["finish_reason"] in ("stop", "length")
    usage = body["usage"]
    assert 0 < usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_seed_chat_answers_as_chat_completion(http: httpx.Client) -> None:
    response = http.post("/v1/chat/completions", json=SEED_CHAT)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert body["id"] and isinstance(body["created"], int)
    message = body["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert isinstance(message["content"], str) and message["content"].strip()


def test_seed_function_calling_extracts_jason_25(http: httpx.Client) -> None:
    response = http.post("/v1/function-calling", json=SEED_FUNCTION_CALLING)
    assert response.status_code == 200, response.text
    body = response.json()
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant" and message["content"] is None
    [call] = message["tool_calls"]
    assert call["id"] and call["type"] == "function"
    assert call["function"]["name"] == "UserDetail"
    assert json.loads(call["function"]["arguments"]) == {"name": "Jason", "age": 25}
    assert json.loads(message["function_call"]["arguments"]) == {"name": "Jason", "age": 25}
    assert body["usage"]["completion_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
