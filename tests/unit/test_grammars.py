"""The grammars of tool calls and JSON answers: what they accept (checked by llama.cpp's own GBNF
parser) and which schemas are refused before a grammar is built."""

from __future__ import annotations

import json
from typing import Any

import pytest
from llama_cpp import LlamaGrammar

from nexa_common.schemas.text import Tool
from nexa_text.grammars import (
    CALL_MIDDLE,
    CALL_PREFIX,
    SchemaError,
    json_object_grammar,
    json_schema_grammar,
    tool_call_grammar,
)

LIMIT = 65_536


def tool(name: str, parameters: dict[str, Any]) -> Tool:
    return Tool.model_validate({"type": "function", "function": {"name": name, "parameters": parameters}})


def parses(gbnf: str) -> bool:
    LlamaGrammar.from_string(gbnf, verbose=False)  # raises ValueError on a grammar llama.cpp cannot parse
    return True


def test_a_tool_call_grammar_names_each_tool_and_parses() -> None:
    tools = [tool("get_weather", {"type": "object", "properties": {"city": {"type": "string"}}}), tool("f", {})]
    gbnf = tool_call_grammar(tools, allow_text=False, max_bytes=LIMIT).gbnf
    assert json.dumps(CALL_PREFIX) in gbnf  # the wrapper's fixed punctuation, as GBNF literals
    assert json.dumps("get_weather" + CALL_MIDDLE) in gbnf and json.dumps("f" + CALL_MIDDLE) in gbnf
    assert "root ::= nexa-call\n" in gbnf and "nexa-text" not in gbnf
    assert parses(gbnf)


def test_allowing_text_adds_a_text_branch_that_cannot_start_with_a_brace() -> None:
    gbnf = tool_call_grammar([tool("f", {"type": "object"})], allow_text=True, max_bytes=LIMIT).gbnf
    assert "root ::= nexa-call | nexa-text" in gbnf and "nexa-text ::= [^{]" in gbnf
    assert parses(gbnf)


def test_json_grammars_parse_and_strings_exclude_control_characters() -> None:
    gbnf = json_schema_grammar({"type": "object", "properties": {"s": {"type": "string"}}}, LIMIT).gbnf
    assert parses(gbnf) and parses(json_object_grammar().gbnf)
    assert r'char ::= [^"\\\x7F\x00-\x1F]' in gbnf


@pytest.mark.parametrize(
    "schema",
    [
        "not an object",
        {"type": "array", "minItems": 10**9},
        {"type": "string", "pattern": "a{1000000}"},
        {"type": "string", "pattern": "\\x00"},
        {"$ref": "https://example.com/schema.json"},
        {"type": 7},
        {"properties": {"x": {"const": "a\x00b"}}},
    ],
    ids=["not-object", "huge-count", "huge-repeat", "nul-pattern", "remote-ref", "bad-type", "nul-const"],
)
def test_schemas_that_cannot_be_grammars_are_refused(schema: Any) -> None:
    with pytest.raises(SchemaError):
        json_schema_grammar(schema, LIMIT)


def test_too_deep_and_too_large_schemas_are_refused() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "array", "items": deep}
    with pytest.raises(SchemaError, match="nested"):
        json_schema_grammar(deep, LIMIT)
    wide = {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(3000)}}
    with pytest.raises(SchemaError, match="larger than"):
        json_schema_grammar(wide, LIMIT)
