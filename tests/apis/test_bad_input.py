"""Bad input on both APIs is a 4xx in that API's error shape that says what was wrong, never a 5xx:
wrong item types, unknown tool types, missing max_tokens, malformed content blocks, a prompt too
long for the model's context, and fields accepted but ignored are named in a header."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from apis_helpers import StartRouter, anthropic_error, openai_error

MODEL = "smollm2"
FUNCTION = {"type": "function", "name": "f", "parameters": {"type": "object", "properties": {}}}
CLIENT_TOOL = {"name": "f", "input_schema": {"type": "object", "properties": {}}}
USER = {"role": "user", "content": "Hi"}
LONG = "word " * 10_000  # at least 10,000 tokens: beyond any context the text service gives SmolLM2 (8192 at most)


RESPONSES_CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("unknown item type", {"input": [{"type": "web_search_call", "id": "ws_1"}]}, "'web_search_call'", "input[0].type"),
    ("item not an object", {"input": ["hello"]}, "must be an object", "input[0]"),
    ("message role", {"input": [{"type": "message", "role": "tool", "content": "x"}]}, "role", "input[0].role"),
    ("image content", {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
     "'input_image'", "input[0].content[0]"),
    ("content part type", {"input": [{"role": "user", "content": [{"type": "picture"}]}]},
     "input_text", "input[0].content[0]"),
    ("content part text", {"input": [{"role": "user", "content": [{"type": "input_text", "text": 3}]}]},
     "string", "input[0].content[0].text"),
    ("output without call", {"input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]},
     "call_x", "input"),
    ("function call fields", {"input": [{"type": "function_call", "name": "f"}]}, "call_id", "input[0].call_id"),
    ("unknown tool types", {"input": "x", "tools": [FUNCTION, {"type": "web_search"}, {"type": "file_search"}]},
     "web_search, file_search", "tools"),
    ("tool name", {"input": "x", "tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name", "tools[0].name"),
    ("tool_choice type", {"input": "x", "tools": [FUNCTION], "tool_choice": {"type": "file_search"}},
     "file_search", "tool_choice"),
    ("tool_choice names no tool", {"input": "x", "tools": [FUNCTION], "tool_choice": {"type": "function", "name": "g"}},
     "'g'", "tool_choice"),
    ("json_schema without schema", {"input": "x", "text": {"format": {"type": "json_schema", "name": "a"}}},
     "schema", "text.format"),
    ("background", {"input": "x", "background": True}, "background", "background"),
    ("empty input", {"input": []}, "at least one", "input"),
    ("input missing", {"model": MODEL}, "input", "input"),
    ("temperature", {"input": "x", "temperature": 3}, "temperature", "temperature"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "says", "param"), RESPONSES_CASES, ids=[c[0] for c in RESPONSES_CASES])
def test_responses_bad_input_is_a_400(
    http: httpx.Client, case: str, body: dict[str, Any], says: str, param: str
) -> None:
    error = openai_error(http.post("/v1/responses", json={"model": MODEL, **body}), 400)
    assert says in error["message"], error
    assert error["param"] == param, error


def test_responses_not_json_and_too_long(http: httpx.Client) -> None:
    openai_error(http.post("/v1/responses", content=b"{not json", headers={"content-type": "application/json"}), 400)
    error = openai_error(http.post("/v1/responses", json={"model": MODEL, "input": LONG}), 400)
    assert error["code"] == "context_length_exceeded" and error["param"] == "input", error
    error = openai_error(http.post("/v1/responses", json={"model": MODEL, "input": LONG, "stream": True}), 400)
    assert error["code"] == "context_length_exceeded", error


def test_responses_routes_unknown_ids(http: httpx.Client) -> None:
    for method, path in (
        ("GET", "/v1/responses/resp_missing"),
        ("GET", "/v1/responses/resp_missing/input_items"),
        ("DELETE", "/v1/responses/resp_missing"),
        ("POST", "/v1/responses/resp_missing/cancel"),
    ):
        assert openai_error(http.request(method, path), 404)["code"] == "response_not_found"
    openai_error(http.get("/v1/responses/resp_missing/input_items", params={"limit": 0}), 400)


MESSAGES_CASES: list[tuple[str, dict[str, Any], str]] = [
    ("missing max_tokens", {"messages": [USER]}, "max_tokens"),
    ("missing model", {"model": None, "max_tokens": 5, "messages": [USER]}, "model"),
    ("no messages", {"max_tokens": 5, "messages": []}, "messages"),
    ("role", {"max_tokens": 5, "messages": [{"role": "tool", "content": "x"}]}, "role"),
    ("unknown block", {"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "video"}]}]}, "'video'"),
    ("image block", {"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
     "'image'"),
    ("block without type", {"max_tokens": 5, "messages": [{"role": "user", "content": [{"text": "x"}]}]}, "'type'"),
    ("text not a string", {"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
     "text must be a string"),
    ("tool_use from the user", {"max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}]}]}, "'tool_use'"),
    ("tool_result without tool_use", {"max_tokens": 5, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_x", "content": "1"}]}]},
     "toolu_x"),
    ("server tool", {"max_tokens": 5, "messages": [USER],
                     "tools": [CLIENT_TOOL, {"type": "web_search_20250305", "name": "web_search"}]},
     "web_search_20250305"),
    ("tool without schema", {"max_tokens": 5, "messages": [USER], "tools": [{"name": "f"}]}, "input_schema"),
    ("tool_choice type", {"max_tokens": 5, "messages": [USER], "tools": [CLIENT_TOOL], "tool_choice": {"type": "x"}},
     "'x'"),
    ("system block", {"max_tokens": 5, "messages": [USER], "system": [{"type": "image"}]}, "'image'"),
    ("temperature", {"max_tokens": 5, "messages": [USER], "temperature": 1.5}, "temperature"),
    ("stop sequence", {"max_tokens": 5, "messages": [USER], "stop_sequences": [""]}, "stop_sequences"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "says"), MESSAGES_CASES, ids=[c[0] for c in MESSAGES_CASES])
def test_messages_bad_input_is_a_400(http: httpx.Client, case: str, body: dict[str, Any], says: str) -> None:
    error = anthropic_error(http.post("/v1/messages", json={"model": MODEL, **body}), 400)
    assert error["type"] == "invalid_request_error"
    assert says in error["message"], error


def test_messages_not_json_too_long_and_count_tokens(http: httpx.Client) -> None:
    anthropic_error(http.post("/v1/messages", content=b"[", headers={"content-type": "application/json"}), 400)
    long = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": LONG}]}
    error = anthropic_error(http.post("/v1/messages", json=long), 400)
    assert error["message"].startswith("prompt is too long: ") and "NEXA_TEXT_N_CTX" in error["message"], error
    error = anthropic_error(http.post("/v1/messages", json={**long, "stream": True}), 400)
    assert error["message"].startswith("prompt is too long: ")
    # count_tokens counts a prompt too long to answer (clients use it to decide what to trim).
    counted = http.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": long["messages"]})
    assert counted.status_code == 200 and counted.json()["input_tokens"] > 10_000
    anthropic_error(http.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": [{"role": "x"}]}), 400)


def test_ignored_fields_are_named(http: httpx.Client) -> None:
    """Fields accepted but not acted on are named in X-Nexa-Ignored-Fields, never dropped silently."""
    responses = http.post(
        "/v1/responses",
        json={"model": MODEL, "input": [USER], "max_output_tokens": 1, "reasoning": {"effort": "low"},
              "truncation": "auto", "frobnicate": 1, "text": {"verbosity": "low", "format": {"type": "text", "x": 1}}},
    )  # fmt: skip
    assert responses.status_code == 200, responses.text
    assert responses.headers["x-nexa-ignored-fields"].split(",") == [
        "reasoning", "text.verbosity", "truncation", "frobnicate", "text.format.x",
    ]  # fmt: skip
    messages = http.post(
        "/v1/messages/count_tokens",
        json={"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi",
              "cache_control": {"type": "ephemeral"}}]}], "thinking": {"type": "enabled"}, "frobnicate": 1},
    )  # fmt: skip
    assert messages.status_code == 200, messages.text
    assert messages.headers["x-nexa-ignored-fields"].split(",") == ["thinking", "cache_control", "frobnicate"]


def test_bodies_beyond_the_limit_are_413(http: httpx.Client) -> None:
    """The router's JSON body limit (NEXA_ROUTER_MAX_JSON_BODY_BYTES, 2 MiB) holds on both APIs."""
    big = "x" * (3 * 1024 * 1024)
    error = openai_error(http.post("/v1/responses", json={"model": MODEL, "input": big}), 413)
    assert error["code"] == "request_too_large" and "NEXA_ROUTER_MAX_JSON_BODY_BYTES" in error["message"]
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": big}]}
    assert anthropic_error(http.post("/v1/messages", json=body), 413)["type"] == "request_too_large"


def test_strict_fields_refuse_unknown_fields(start_router: StartRouter) -> None:
    """With NEXA_ROUTER_STRICT_FIELDS an unknown field is a 400 naming it (each API in its own shape);
    fields the server knows but ignores are still accepted and named."""
    url, _ = start_router("router-apis-strict", {"NEXA_ROUTER_STRICT_FIELDS": "true"})
    with httpx.Client(base_url=url, timeout=120) as client:
        error = openai_error(client.post("/v1/responses", json={"input": "Hi", "frobnicate": 1}), 400)
        assert (
            error["code"] == "unknown_field" and error["param"] == "frobnicate" and "'frobnicate'" in error["message"]
        )
        nested = openai_error(client.post("/v1/responses", json={"input": "Hi", "text": {"frob": 1}}), 400)
        assert nested["param"] == "text.frob"
        body = {"model": MODEL, "max_tokens": 1, "messages": [USER], "frobnicate": 1}
        assert "'frobnicate'" in anthropic_error(client.post("/v1/messages", json=body), 400)["message"]
        counted = client.post("/v1/messages/count_tokens", json={"model": MODEL, "messages": [USER], "frob": 1})
        assert "'frob'" in anthropic_error(counted, 400)["message"]
        known = client.post("/v1/responses", json={"input": "Hi", "max_output_tokens": 1, "user": "u1"})
        assert known.status_code == 200 and known.headers["x-nexa-ignored-fields"] == "user"
