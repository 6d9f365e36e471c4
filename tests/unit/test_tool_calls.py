"""CallSplitter: a streamed answer split into text or one tool call, the call's arguments released
as they grow but one character behind (it may be the wrapper's closing brace); and plan_tools."""

from __future__ import annotations

import pytest

from nexa_common.schemas.text import ChatCompletionRequest
from nexa_text.tool_calls import CallSplitter, plan_tools

CALL = '{"tool": "get_weather", "parameters": {"city": "Paris", "days": 2}}'


def stream(pieces: list[str], complete: bool = True) -> tuple[CallSplitter, list[str], list[str]]:
    splitter = CallSplitter()
    names, arguments = [], []
    for piece in pieces:
        split = splitter.feed(piece)
        if split.call_name is not None:
            names.append(split.call_name)
        arguments.append(split.arguments)
    arguments.append(splitter.finish(complete).arguments)
    return splitter, names, arguments


def test_a_call_streamed_a_character_at_a_time_gives_its_name_once_and_its_arguments_in_order() -> None:
    splitter, names, arguments = stream(list(CALL))
    assert names == ["get_weather"]
    assert "".join(arguments) == '{"city": "Paris", "days": 2}'
    assert splitter.mode == "call" and splitter.arguments == '{"city": "Paris", "days": 2}'


def test_the_last_character_of_the_arguments_is_held_back_until_the_next_one() -> None:
    splitter = CallSplitter()
    splitter.feed('{"tool": "f", "parameters": ')
    assert splitter.feed('{"a": 1}').arguments == '{"a": 1'  # that "}" could be the wrapper's
    assert splitter.feed("}").arguments == "}"  # the arguments' own brace, now that another followed
    assert splitter.finish(complete=True).arguments == ""  # the wrapper's brace is not an argument
    assert splitter.arguments == '{"a": 1}'


def test_a_call_cut_by_the_token_limit_releases_everything_it_has() -> None:
    _, _, arguments = stream([CALL[:40]], complete=False)
    assert "".join(arguments) == CALL[len('{"tool": "get_weather", "parameters": ') : 40]


def test_the_name_split_across_deltas_is_found_once_the_separator_arrives() -> None:
    splitter = CallSplitter()
    assert splitter.feed('{"tool": "get_').call_name is None
    assert splitter.feed('weather", "para').call_name is None
    split = splitter.feed('meters": {')
    assert split.call_name == "get_weather" and split.arguments == ""


def test_text_answers_pass_through_whole() -> None:
    splitter = CallSplitter()
    assert splitter.feed("").content == ""
    assert splitter.feed("It is ").content == "It is "
    assert splitter.feed("sunny {maybe}").content == "sunny {maybe}"
    assert splitter.mode == "text" and splitter.name is None
    assert splitter.finish(complete=True).content == ""


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
OTHER = {"type": "function", "function": {"name": "g", "parameters": {"type": "object"}}}


def request(**fields: object) -> ChatCompletionRequest:
    return ChatCompletionRequest.model_validate({"messages": [{"role": "user", "content": "hi"}], **fields})


@pytest.mark.parametrize(
    ("fields", "must_call", "names", "allow_text"),
    [
        ({"tools": [TOOL, OTHER]}, False, ["f", "g"], True),
        ({"tools": [TOOL, OTHER], "tool_choice": "required"}, False, ["f", "g"], False),
        ({"tools": [TOOL, OTHER], "tool_choice": {"type": "function", "function": {"name": "g"}}}, False, ["g"], False),
        ({"tools": [TOOL, OTHER]}, True, ["f", "g"], False),
    ],
    ids=["auto", "required", "named", "function-calling-route"],
)
def test_plan_tools(fields: dict[str, object], must_call: bool, names: list[str], allow_text: bool) -> None:
    plan = plan_tools(request(**fields), must_call=must_call)
    assert plan is not None
    assert [t.function.name for t in plan.tools] == names and plan.allow_text is allow_text


def test_no_tools_or_none_means_no_plan() -> None:
    assert plan_tools(request(), must_call=False) is None
    assert plan_tools(request(tools=[TOOL], tool_choice="none"), must_call=True) is None
