"""The OpenAI Agents SDK runs an agent with one function tool on its default model class (the
Responses API), pointed at the router: the model calls the tool through /v1/responses and the SDK
runs it; the tool's result is the agent's answer."""

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
        instructions="Call get_weather for the city the user asks about.",
        tools=[get_weather],
        model=MODEL,
        model_settings=agents.ModelSettings(tool_choice="required", max_tokens=40, temperature=0),
        # The tool's result is the answer. (Asked to answer from it, SmolLM2 135M on the default
        # engine calls the tool again, greedily, every turn; the model's own answer after a
        # function_call_output is tested in test_responses_openai.py.)
        tool_use_behavior="stop_on_first_tool",
    )
    assert isinstance(agents.Agent(name="x", model=MODEL).model, str)  # the default provider picks the class
    result = asyncio.run(asyncio.wait_for(agents.Runner.run(agent, "What is the weather in Paris?", max_turns=3), 600))
    assert cities == ["Paris"], cities
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item"], kinds
    assert result.final_output == "It is sunny and 21 degrees in Paris."
    # Every model call went through the Responses API.
    assert result.raw_responses and all(
        r.response_id and r.response_id.startswith("resp_") for r in result.raw_responses
    )
