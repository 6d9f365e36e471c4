"""Anthropic's Messages API through the official `anthropic` client, on the real SmolLM2 behind the
router: a plain answer, `messages.stream`, a tool use round trip, and count_tokens."""

from __future__ import annotations

import json
from typing import Literal

import anthropic
import pytest
from apis_helpers import StartRouter
from pydantic import BaseModel

MODEL = "smollm2"
LONG = [{"role": "user", "content": "Count from 1 to 1000, one number per line."}]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def test_plain_message(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(
        model=MODEL, max_tokens=8, system="You are terse.", messages=[{"role": "user", "content": "Say hello."}]
    )
    assert message.id.startswith("msg_") and message.role == "assistant" and message.model == MODEL
    [block] = message.content
    assert block.type == "text" and block.text
    assert message.stop_reason in ("end_turn", "max_tokens")
    assert message.usage.input_tokens > 0 and 0 < message.usage.output_tokens <= 8


def test_stream(claude: anthropic.Anthropic) -> None:
    with claude.messages.stream(
        model=MODEL, max_tokens=6, messages=[{"role": "user", "content": "Count to three."}]
    ) as stream:
        kinds = []
        texts = []
        for event in stream:
            kinds.append(event.type)
            if event.type == "text":
                texts.append(event.text)
        final = stream.get_final_message()
    raw = [k for k in kinds if k not in ("text",)]  # the helper's own derived events
    assert raw[:2] == ["message_start", "content_block_start"]
    assert raw[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert final.content[0].type == "text" and final.content[0].text == "".join(texts) != ""
    assert final.stop_reason in ("end_turn", "max_tokens")
    # The input count arrives with message_delta; the helper folds it into the final message.
    assert final.usage.input_tokens > 0 and final.usage.output_tokens > 0


def test_tool_use_round_trip(claude: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = claude.messages.create(
        model=MODEL, max_tokens=40, messages=[question], tools=[WEATHER_TOOL], tool_choice={"type": "any"}
    )
    assert first.stop_reason == "tool_use"
    [use] = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and isinstance(use.input, dict) and isinstance(use.input.get("city"), str)
    result = {"type": "tool_result", "tool_use_id": use.id, "content": "21 degrees and clear"}
    # Greedy (this SDK has no temperature argument): sampled, the answer may begin another call and
    # reach the token limit before its name, which leaves no content at all.
    second = claude.messages.create(
        model=MODEL, max_tokens=12, tools=[WEATHER_TOOL],
        messages=[question, {"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}],
        extra_body={"temperature": 0},
    )  # fmt: skip
    assert second.content and second.usage.input_tokens > first.usage.input_tokens


def test_streamed_tool_use(claude: anthropic.Anthropic) -> None:
    question = {"role": "user", "content": "What is the weather in Paris?"}
    with claude.messages.stream(
        model=MODEL,
        max_tokens=40,
        messages=[question],
        tools=[WEATHER_TOOL],
        tool_choice={"type": "any"},  # type: ignore[list-item]
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    raw = [e.type for e in events if e.type not in ("text", "input_json")]  # not the helper's derived events
    deltas = raw.count("content_block_delta")
    assert deltas >= 1
    assert raw == [
        "message_start", "content_block_start", *["content_block_delta"] * deltas, "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    start = next(e for e in events if e.type == "content_block_start")
    assert start.content_block.type == "tool_use" and start.content_block.name == "get_weather"  # type: ignore[union-attr]
    partial = "".join(e.delta.partial_json for e in events if e.type == "content_block_delta")  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    [use] = final.content
    assert use.type == "tool_use" and use.id == start.content_block.id  # type: ignore[union-attr]
    assert use.input == json.loads(partial) and isinstance(use.input["city"], str)  # type: ignore[index]


def test_token_limit_is_the_stop_reason(claude: anthropic.Anthropic) -> None:
    message = claude.messages.create(model=MODEL, max_tokens=3, messages=LONG, extra_body={"temperature": 0})  # type: ignore[arg-type]
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 3
    assert message.content[0].type == "text" and message.content[0].text


class Colour(BaseModel):
    name: Literal["red", "green", "blue"]


def test_structured_output_parses(claude: anthropic.Anthropic) -> None:
    """output_config.format is grammar-constrained, so the SDK's parse always gets its model."""
    parsed = claude.messages.parse(
        model=MODEL, max_tokens=30, messages=[{"role": "user", "content": "Name a colour."}], output_format=Colour
    )
    assert isinstance(parsed.parsed_output, Colour)


def test_count_tokens_matches_the_prompt_the_model_sees(claude: anthropic.Anthropic) -> None:
    """count_tokens counts what generation then reports as its input, tools included."""
    request = {
        "model": MODEL,
        "system": "You are terse.",
        "messages": [{"role": "user", "content": "Name a colour."}],
        "tools": [WEATHER_TOOL],
    }
    counted = claude.messages.count_tokens(**request)  # type: ignore[arg-type]
    answered = claude.messages.create(max_tokens=4, **request)  # type: ignore[arg-type]
    assert counted.input_tokens == answered.usage.input_tokens > 0
    without_tools = claude.messages.count_tokens(model=MODEL, system="You are terse.", messages=request["messages"])  # type: ignore[arg-type]
    assert 0 < without_tools.input_tokens < counted.input_tokens


def test_x_api_key_is_accepted(start_router: StartRouter) -> None:
    url, _ = start_router("router-apis-keys", {"NEXA_ROUTER_API_KEYS": "anthropic-style-key"})
    request = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    good = anthropic.Anthropic(base_url=url, api_key="anthropic-style-key", max_retries=0, timeout=60)
    assert good.messages.count_tokens(**request).input_tokens > 0  # type: ignore[arg-type]
    bad = anthropic.Anthropic(base_url=url, api_key="wrong", max_retries=0, timeout=60)
    with pytest.raises(anthropic.AuthenticationError) as caught:
        bad.messages.count_tokens(**request)  # type: ignore[arg-type]
    assert caught.value.body["type"] == "error"  # type: ignore[index]
    assert caught.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
