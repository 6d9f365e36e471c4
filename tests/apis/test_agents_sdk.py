"""The OpenAI Agents SDK runs an agent with one function tool on its default model class (the
Responses API), pointed at the router: the model calls the tool, the SDK runs it and sends its
output back, and the model answers."""

from __future__ import annotations

import asyncio

import agents
import openai
import pytest

MODEL = "smollm2"


@pytest.fixture
def sdk_client(apis_url: str) -> openai.AsyncOpenAI:
    client = openai.AsyncOpenAI(base_url=apis_url + "/v1", api_key="unused", timeout=180.0, max_retries=0)
    agents.set_default_openai_client(client, use_for_tracing=False)
    agents.set_default_openai_api("responses")
    # Traces would be uploaded to OpenAI's platform; there is none here.
    agents.set_tracing_disabled(True)
    return client


def test_agent_with_a_function_tool(sdk_client: openai.AsyncOpenAI) -> None:
    cities: list[str] = []

    @agents.function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        cities.append(city)
        return f"It is sunny and 21 degrees in {city}."

    agent = agents.Agent(
        name="weather",
        # A 135M model needs telling when to stop calling (greedy decoding makes it do so every time).
        instructions="Call get_weather once. When a tool result is already in the conversation, do not call "
        "the tool again: answer the user in one sentence.",
        tools=[get_weather],
        model=MODEL,
        # The first turn must call the tool; the SDK then resets the choice to auto (reset_tool_choice).
        model_settings=agents.ModelSettings(tool_choice="required", max_tokens=40, temperature=0),
    )
    assert isinstance(agents.Agent(name="x", model=MODEL).model, str)  # the default provider picks the class
    result = asyncio.run(asyncio.wait_for(agents.Runner.run(agent, "What is the weather in Paris?", max_turns=3), 600))
    assert cities, "the tool was never called"
    kinds = [item.type for item in result.new_items]
    assert kinds[:2] == ["tool_call_item", "tool_call_output_item"], kinds
    assert kinds[-1] == "message_output_item", kinds
    assert isinstance(result.final_output, str) and result.final_output
    # Every model call went through the Responses API.
    assert result.raw_responses and all(
        r.response_id and r.response_id.startswith("resp_") for r in result.raw_responses
    )
