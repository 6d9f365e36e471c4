"""The schema reader on its own: property names and data values are not keywords, what a grammar
cannot enforce is relaxed with its pointer, what cannot be honoured is an error with its pointer;
and the integer-range rule the grammar enforces bounds with. (The grammars built from these are
exercised on the real model by test_conformance_schemas.)"""

from __future__ import annotations

import re
from typing import Any

import pytest

from nexa_common.schema_reader import SchemaError, read_schema
from nexa_text.integer_ranges import integer_rule


def test_keyword_names_are_properties_and_data_is_not_read() -> None:
    schema = {
        "type": "object",
        "properties": {
            "pattern": {"type": "string", "default": {"$ref": "not a reference"}},
            "$ref": {"type": "string", "examples": [{"type": 7, "maxLength": -1}]},
            "type": {"enum": [{"pattern": 5}, "x"]},
            "maxLength": {"const": {"minItems": "many"}},
        },
        "required": ["pattern", "$ref"],
    }
    read = read_schema(schema)
    assert read.relaxed == []
    assert set(read.root["properties"]) == {"pattern", "$ref", "type", "maxLength"}
    assert read.root["properties"]["type"] == {"enum": [{"pattern": 5}, "x"]}
    assert "default" not in read.root["properties"]["pattern"]


def test_large_maxima_and_unenforceable_keywords_are_relaxed_with_their_pointers() -> None:
    schema = {
        "type": "object",
        "properties": {
            "text": {"type": "string", "maxLength": 524288},
            "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True, "maxItems": 100_000},
            "ratio": {"type": "number", "minimum": 0.5},
        },
    }
    read = read_schema(schema)
    assert [r.pointer for r in read.relaxed] == [
        "/properties/text/maxLength",
        "/properties/tags/uniqueItems",
        "/properties/tags/maxItems",
        "/properties/ratio/minimum",
    ]
    assert "maxLength" not in read.root["properties"]["text"]


@pytest.mark.parametrize(
    ("schema", "pointer"),
    [
        ({"properties": {"a": {"$ref": "other.json#/x"}}}, "/properties/a/$ref"),
        ({"properties": {"a": {"$ref": "#/$defs/none"}}}, "/properties/a/$ref"),
        ({"properties": {"a": {"type": "str"}}}, "/properties/a/type"),
        ({"properties": {"a": {"minLength": 9999}}}, "/properties/a/minLength"),
        ({"properties": {"a": {"minItems": 3, "maxItems": 2}}}, "/properties/a/minItems"),
        ({"properties": {"a": {"type": "integer", "minimum": 5, "maximum": 4}}}, "/properties/a/minimum"),
        ({"properties": {"a": {"enum": "x"}}}, "/properties/a/enum"),
        ({"properties": {"a": {"pattern": "^\\x00$"}}}, "/properties/a/pattern"),
        ({"properties": {"a": False}, "required": ["a"]}, "/properties/a"),
    ],
)
def test_what_cannot_be_honoured_names_its_pointer(schema: dict[str, Any], pointer: str) -> None:
    with pytest.raises(SchemaError) as caught:
        read_schema(schema)
    assert caught.value.pointer == pointer


def test_references_are_resolved_to_named_definitions_even_recursive_ones() -> None:
    schema = {
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}}},
        "type": "object",
        "properties": {"head": {"$ref": "#/$defs/node"}, "also": {"$ref": "#/$defs/node"}},
    }
    read = read_schema(schema, ref_prefix="t0")
    ref = read.root["properties"]["head"]["$ref"]
    assert read.root["properties"]["also"]["$ref"] == ref
    assert read.refs[ref]["properties"]["next"] == {"$ref": ref}


def test_type_lists_and_nullable_keep_their_constraints_per_branch() -> None:
    read = read_schema({"type": ["string", "null"], "maxLength": 5})
    assert read.root == {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "null", "maxLength": 5}]}
    nullable = read_schema({"type": "integer", "minimum": 1, "nullable": True})
    assert nullable.root == {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]}


def _as_regex(gbnf: str) -> re.Pattern[str]:
    return re.compile(re.sub(r'"([^"]*)"', lambda m: re.escape(m.group(1)), gbnf).replace(" ", ""))


@pytest.mark.parametrize(
    ("low", "high"),
    [(0, None), (1, None), (None, -1), (None, 0), (-3, 3), (1, 10), (10, 99), (7, 1234), (-250, -17), (123, None)],
)
def test_integer_rule_admits_exactly_the_range(low: int | None, high: int | None) -> None:
    rule = _as_regex(integer_rule(low, high))
    for value in range(-2000, 2001):
        expected = (low is None or value >= low) and (high is None or value <= high)
        assert bool(rule.fullmatch(str(value))) == expected, value
    assert not any(rule.fullmatch(text) for text in ("01", "-0", "00", "+1", "1.0", ""))


def test_patterns_are_anchored_and_kept_inside_a_json_string() -> None:
    def pattern_of(pattern: str) -> str:
        return str(read_schema({"type": "string", "pattern": pattern}).root.get("pattern"))

    assert pattern_of("^[a-z]+$") == "^[a-z]+$"
    assert pattern_of("abc") == "^.*(abc).*$"  # JSON Schema patterns match anywhere
    assert pattern_of("^\\d{3}$") == "^[0-9]{3}$"
    assert pattern_of("^[^,]+$") == '^[^,"\\\\\\x00-\\x1F]+$'  # no raw quote, backslash or control
    relaxed = read_schema({"type": "string", "pattern": "^(?=a)\\w+$"})
    assert "pattern" not in relaxed.root and relaxed.relaxed[0].pointer == "/pattern"
