"""The Python clients people point at an OpenAI-compatible server, as their users call them, against
the real router and SmolLM2: LangChain, pydantic-ai, instructor and the OpenAI Agents SDK.

Protocol facts only (shapes, counts, finish reasons, parsed objects), never the model's wisdom:
a 135M model's answers are grammar-constrained where a client asks for structure, so what a client
parses always parses; what the words say is not checked.
"""

from __future__ import annotations

import asyncio
from typing import Any

import jsonschema
import pytest
from pydantic import BaseModel, Field

MODEL = "smollm2"
KEY = "unused"


class Person(BaseModel):
    """A person mentioned in the text."""

    name: str = Field(max_length=40)
    age: int


PERSON_PROMPT = "Extract the person: Jason is 25 years old."


def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"sunny in {city}"


# --- LangChain ---------------------------------------------------------------------------------


def _chat_openai(api_base: str, **kwargs: Any) -> Any:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(model=MODEL, base_url=api_base, api_key=KEY, temperature=0, max_retries=0, **kwargs)


def test_langchain_invoke_honours_max_tokens(api_base: str) -> None:
    # ChatOpenAI sends max_tokens as `max_completion_tokens`; the server must stop there.
    message = _chat_openai(api_base, max_tokens=5).invoke("Tell me a long story about a dragon.")
    assert message.usage_metadata is not None
    assert 1 <= message.usage_metadata["output_tokens"] <= 5
    assert message.response_metadata["finish_reason"] == "length"
    assert isinstance(message.content, str) and message.content


def test_langchain_stream(api_base: str) -> None:
    chunks = list(_chat_openai(api_base, max_tokens=12, stream_usage=True).stream("Count to ten."))
    assert len(chunks) > 2
    whole = chunks[0]
    for chunk in chunks[1:]:
        whole = whole + chunk
    assert isinstance(whole.content, str) and whole.content
    assert whole.usage_metadata is not None and whole.usage_metadata["output_tokens"] <= 12
    assert whole.response_metadata.get("finish_reason") in ("stop", "length")


def test_langchain_bind_tools_with_a_forced_choice(api_base: str) -> None:
    from langchain_core.tools import tool

    @tool
    def lookup_weather(city: str) -> str:
        """The weather in a city."""
        return city

    model = _chat_openai(api_base, max_tokens=60).bind_tools([lookup_weather], tool_choice="lookup_weather")
    message = model.invoke("What is the weather in Paris?")
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call["name"] == "lookup_weather" and isinstance(call["args"]["city"], str)
    assert message.response_metadata["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("method", ["function_calling", "json_schema"])
def test_langchain_structured_output(api_base: str, method: str) -> None:
    structured = _chat_openai(api_base, max_tokens=60).with_structured_output(Person, method=method)
    person = structured.invoke(PERSON_PROMPT)
    assert isinstance(person, Person)


def test_langchain_structured_output_json_mode(api_base: str) -> None:
    # json_mode asks for "a JSON object" only; the keys are the model's business, the object is ours.
    schema = {"title": "person", "type": "object", "properties": {"name": {"type": "string"}}}
    structured = _chat_openai(api_base, max_tokens=60).with_structured_output(
        schema, method="json_mode", include_raw=True
    )
    result = structured.invoke("Reply in JSON: the name of the person in 'Jason is 25'.")
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], dict)


# --- pydantic-ai -------------------------------------------------------------------------------


def _pydantic_ai_model(api_base: str) -> Any:
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    return OpenAIChatModel(MODEL, provider=OpenAIProvider(base_url=api_base, api_key=KEY))


def test_pydantic_ai_agent_with_its_forced_output_tool(api_base: str) -> None:
    # With a structured output type, pydantic-ai makes the answer a call of its output tool and
    # forces it (tool_choice "required": text is no answer).
    from pydantic_ai import Agent

    agent = Agent(_pydantic_ai_model(api_base), output_type=Person, retries=0)
    result = agent.run_sync(PERSON_PROMPT, model_settings={"temperature": 0, "max_tokens": 80})
    assert isinstance(result.output, Person)
    calls = [p for m in result.all_messages() for p in getattr(m, "parts", []) if p.part_kind == "tool-call"]
    assert calls and calls[0].tool_name == "final_result"


def test_pydantic_ai_forced_function_tool(api_base: str) -> None:
    from pydantic_ai.direct import model_request_sync
    from pydantic_ai.messages import ModelRequest
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.tools import ToolDefinition

    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 40}}, "required": ["city"]}
    weather = ToolDefinition(name="get_weather", description="The weather in a city.", parameters_json_schema=schema)
    response = model_request_sync(
        _pydantic_ai_model(api_base),
        [ModelRequest.user_text_prompt("What is the weather in Oslo?")],
        model_settings={"temperature": 0, "max_tokens": 60, "tool_choice": ["get_weather"]},
        model_request_parameters=ModelRequestParameters(function_tools=[weather], allow_text_output=False),
    )
    calls = [p for p in response.parts if p.part_kind == "tool-call"]
    assert len(calls) == 1 and calls[0].tool_name == "get_weather"
    jsonschema.validate(calls[0].args_as_dict(), schema)
    assert response.finish_reason == "tool_call"


def test_pydantic_ai_native_output(api_base: str) -> None:
    from pydantic_ai import Agent, NativeOutput

    agent = Agent(_pydantic_ai_model(api_base), output_type=NativeOutput(Person), retries=0)
    result = agent.run_sync(PERSON_PROMPT, model_settings={"temperature": 0, "max_tokens": 80})
    assert isinstance(result.output, Person)


# --- instructor --------------------------------------------------------------------------------


def _instructor(api_base: str, mode_name: str) -> Any:
    import instructor
    from openai import OpenAI

    client = OpenAI(base_url=api_base, api_key=KEY, max_retries=0)
    return instructor.from_openai(client, mode=getattr(instructor.Mode, mode_name))


INSTRUCTOR_REQUEST: dict[str, Any] = {
    "model": MODEL,
    "response_model": Person,
    "messages": [{"role": "user", "content": PERSON_PROMPT}],
    "max_retries": 1,
    "temperature": 0,
    "max_tokens": 80,
}


@pytest.mark.parametrize("mode", ["TOOLS", "JSON_SCHEMA"])
def test_instructor_modes(api_base: str, mode: str) -> None:
    person = _instructor(api_base, mode).chat.completions.create(**INSTRUCTOR_REQUEST)
    assert isinstance(person, Person)


def test_instructor_partial_streaming(api_base: str) -> None:
    partials = list(_instructor(api_base, "TOOLS").chat.completions.create_partial(**INSTRUCTOR_REQUEST))
    # The arguments stream in pieces: several partial objects, the last one complete.
    assert len(partials) > 2
    last = partials[-1]
    assert isinstance(last.name, str) and isinstance(last.age, int)
    Person.model_validate(last.model_dump())


# --- OpenAI Agents SDK -------------------------------------------------------------------------


def test_openai_agents_function_tool_streamed(api_base: str) -> None:
    from agents import Agent, ModelSettings, OpenAIChatCompletionsModel, Runner, function_tool
    from openai import AsyncOpenAI

    calls: list[str] = []

    @function_tool
    def lookup_weather(city: str) -> str:
        """The weather in a city."""
        calls.append(city)
        return f"sunny in {city}"

    async def run() -> tuple[Any, list[str]]:
        client = AsyncOpenAI(base_url=api_base, api_key=KEY, max_retries=0)
        agent = Agent(
            name="weather",
            instructions="Answer with the weather tool.",
            tools=[lookup_weather],
            model=OpenAIChatCompletionsModel(model=MODEL, openai_client=client),
            model_settings=ModelSettings(tool_choice="required", temperature=0, max_tokens=60),
            tool_use_behavior="stop_on_first_tool",
        )
        result = Runner.run_streamed(agent, "What is the weather in Rome?", max_turns=2)
        kinds = [event.type async for event in result.stream_events()]
        await client.close()
        return result, kinds

    result, kinds = asyncio.run(run())
    assert "raw_response_event" in kinds and "run_item_stream_event" in kinds
    assert len(calls) == 1
    assert result.final_output == f"sunny in {calls[0]}"
