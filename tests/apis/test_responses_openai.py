"""The Responses API through the official `openai` client, on the real SmolLM2 behind the router:
plain and streamed answers, a function tool round trip, a stored conversation continued with
`previous_response_id`, `text.format` json_schema parsed, and the stored response's routes."""

from __future__ import annotations

import json
import threading
from typing import Any, Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

MODEL = "smollm2"
WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "The current weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


LONG = "Count from 1 to 1000, one number per line."


def prompt_tokens(text_url: str, messages: list[dict[str, Any]]) -> int:
    """What the text service counts for these chat messages: the prompt a translation should produce."""
    answer = httpx.post(f"{text_url}/v1/tokenize", json={"messages": messages}, timeout=60)
    answer.raise_for_status()
    return int(answer.json()["prompt_tokens"])


def test_plain_answer_is_stored(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=MODEL, input="Say hello.", max_output_tokens=8, temperature=0)
    assert response.id.startswith("resp_")
    assert response.status in ("completed", "incomplete")
    assert response.output[0].type == "message"
    assert response.output_text
    assert response.usage is not None and response.usage.input_tokens > 0
    assert 0 < response.usage.output_tokens <= 8
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    stored = oai.responses.retrieve(response.id)
    assert stored.output_text == response.output_text
    assert stored.usage == response.usage
    items = oai.responses.input_items.list(response.id)
    assert [(i.type, i.role) for i in items.data] == [("message", "user")]  # type: ignore[union-attr]
    assert items.data[0].content[0].text == "Say hello."  # type: ignore[union-attr]


def test_streamed_event_sequence(oai: openai.OpenAI) -> None:
    events = list(oai.responses.create(model=MODEL, input="Count to three.", max_output_tokens=6, stream=True))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete" if events[-1].response.status == "incomplete" else "response.completed",
    ]
    assert set(kinds[4:-4]) == {"response.output_text.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and final.output_text == text
    assert events[0].response.id == final.id and events[0].response.status == "in_progress"
    assert oai.responses.retrieve(final.id).output_text == text


def test_streamed_function_call(oai: openai.OpenAI) -> None:
    events = list(
        oai.responses.create(
            model=MODEL, input="What is the weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required",
            stream=True, max_output_tokens=40, temperature=0,
        )
    )  # fmt: skip
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"], kinds
    added = events[2].item  # type: ignore[union-attr]
    assert added.type == "function_call" and added.name == "get_weather" and added.status == "in_progress"
    assert kinds[-3:] == ["response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    assert set(kinds[3:-3]) == {"response.function_call_arguments.delta"}
    assert [e.sequence_number for e in events] == list(range(len(events)))
    arguments = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert events[-3].arguments == arguments and isinstance(json.loads(arguments)["city"], str)  # type: ignore[union-attr]
    [call] = events[-1].response.output  # type: ignore[union-attr]
    assert call.type == "function_call" and call.arguments == arguments and call.status == "completed"
    assert call.call_id == added.call_id and call.id == added.id


def test_token_limit_makes_an_incomplete_response(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=MODEL, input=LONG, max_output_tokens=3, temperature=0)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None and response.incomplete_details.reason == "max_output_tokens"
    [message] = response.output
    assert message.type == "message" and message.status == "incomplete" and response.output_text
    assert response.usage is not None and response.usage.output_tokens == 3


def test_input_items_are_paged(oai: openai.OpenAI) -> None:
    said = ["one", "two", "three"]
    response = oai.responses.create(
        model=MODEL, input=[{"role": "user", "content": word} for word in said], max_output_tokens=1
    )

    def texts(page: Any) -> list[str]:
        return [item.content[0].text for item in page.data]

    newest = oai.responses.input_items.list(response.id, limit=2)  # newest first, as OpenAI's default
    assert texts(newest) == ["three", "two"] and newest.has_more
    oldest = oai.responses.input_items.list(response.id, order="asc", limit=2)
    assert texts(oldest) == ["one", "two"] and oldest.has_more
    rest = oai.responses.input_items.list(response.id, order="asc", limit=2, after=oldest.data[-1].id)
    assert texts(rest) == ["three"] and not rest.has_more
    with pytest.raises(openai.BadRequestError):
        oai.responses.input_items.list(response.id, after="msg_not_in_this_response")


def test_function_tool_round_trip(oai: openai.OpenAI, text_url: str) -> None:
    """The client runs the tool and sends its output back with the whole conversation (store off)."""
    question = {"role": "user", "content": "What is the weather in Paris?"}
    first = oai.responses.create(
        model=MODEL, input=[question], tools=[WEATHER_TOOL], tool_choice="required", store=False,
        max_output_tokens=40, temperature=0,
    )  # fmt: skip
    assert first.status == "completed"
    [call] = first.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id and isinstance(json.loads(call.arguments)["city"], str)
    with pytest.raises(openai.NotFoundError):  # store=False: nothing to retrieve
        oai.responses.retrieve(first.id)
    output = {
        "type": "function_call_output",
        "call_id": call.call_id,
        "output": '{"temperature_c": 21, "sky": "clear"}',
    }
    second = oai.responses.create(
        model=MODEL, input=[question, call.model_dump(exclude_none=True), output], tools=[WEATHER_TOOL],
        tool_choice="none", max_output_tokens=12, temperature=0,
    )  # fmt: skip
    assert second.output[0].type == "message" and second.output_text
    # The model saw the question, its call and the tool's answer, as chat messages.
    chat_call = {"id": call.call_id, "type": "function", "function": {"name": call.name, "arguments": call.arguments}}
    conversation = [
        {"role": "user", "content": question["content"]},
        {"role": "assistant", "content": None, "tool_calls": [chat_call]},
        {"role": "tool", "tool_call_id": call.call_id, "content": output["output"]},
    ]
    assert second.usage is not None
    assert second.usage.input_tokens == prompt_tokens(text_url, conversation)


def test_previous_response_id_continues_the_stored_conversation(oai: openai.OpenAI, text_url: str) -> None:
    first = oai.responses.create(
        model=MODEL, input="My name is Ada.", instructions="Answer in one short sentence.", max_output_tokens=8,
        temperature=0,
    )  # fmt: skip
    second = oai.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id, max_output_tokens=8, temperature=0
    )
    assert second.previous_response_id == first.id
    # The model saw the stored question and answer, then the new question; the instructions are not
    # carried over (as in OpenAI's API).
    history = [
        {"role": "user", "content": "My name is Ada."},
        {"role": "assistant", "content": first.output_text},
        {"role": "user", "content": "What is my name?"},
    ]
    assert second.instructions is None and second.usage is not None
    assert second.usage.input_tokens == prompt_tokens(text_url, history)
    third = oai.responses.create(
        model=MODEL, input="Thanks.", previous_response_id=second.id, max_output_tokens=4, temperature=0
    )
    history += [{"role": "assistant", "content": second.output_text}, {"role": "user", "content": "Thanks."}]
    assert third.usage is not None and third.usage.input_tokens == prompt_tokens(text_url, history)
    # Each response lists only its own input items.
    assert [i.content[0].text for i in oai.responses.input_items.list(third.id).data] == ["Thanks."]  # type: ignore[union-attr]


class Verdict(BaseModel):
    answer: Literal["yes", "no"]
    confidence: int


def test_text_format_json_schema_parses(oai: openai.OpenAI) -> None:
    parsed = oai.responses.parse(
        model=MODEL, input="Is the sky blue? Answer with your confidence from 1 to 10.", text_format=Verdict,
        max_output_tokens=60, temperature=0,
    )  # fmt: skip
    assert parsed.status == "completed", parsed.output_text
    assert isinstance(parsed.output_parsed, Verdict)
    assert parsed.text is not None and parsed.text.format.type == "json_schema"


def test_delete_removes_the_stored_response(oai: openai.OpenAI) -> None:
    response = oai.responses.create(model=MODEL, input="Hi", max_output_tokens=2)
    oai.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(response.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.delete(response.id)


def test_cancel_stops_a_streaming_response(oai: openai.OpenAI, apis_url: str) -> None:
    stream = oai.responses.create(
        model=MODEL, input="Write a long story about a dragon.", max_output_tokens=400, stream=True
    )
    cancelled: list[openai.types.responses.Response] = []
    events = []
    with stream:
        for event in stream:
            events.append(event)
            if event.type == "response.output_text.delta" and not cancelled:
                # From another client, as a user interrupting would (the stream keeps being read here).
                worker = threading.Thread(
                    target=lambda rid=events[0].response.id: cancelled.append(oai.responses.cancel(rid))
                )
                worker.start()
            assert len(events) < 500, "the stream did not stop"
    worker.join(30)
    assert cancelled and cancelled[0].status == "cancelled"
    last = events[-1]
    assert last.type == "response.incomplete" and last.response.status == "cancelled"
    assert last.response.usage is None or last.response.usage.output_tokens < 400
    assert oai.responses.retrieve(last.response.id).status == "cancelled"
    with pytest.raises(openai.BadRequestError):  # finished: nothing left to cancel
        oai.responses.cancel(last.response.id)
