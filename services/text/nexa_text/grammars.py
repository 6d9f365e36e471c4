"""GBNF grammars that make the model's output parse: tool calls whose arguments match each tool's
JSON schema, and the JSON response formats.

A tool call is written as `{"tool": "<name>", "parameters": {...}}` with fixed punctuation, so a
stream can be split into the tool's name and its argument text while it is being generated.
(Those keys, rather than OpenAI's `name`/`arguments`, because small models then stop confusing
the tool's name with an argument called `name`: SmolLM2-135M filled `{"name": "25"}` otherwise.)

Schemas are read by nexa_common.schema_reader, which tells keywords from property names and data
values and relaxes what a grammar cannot enforce; this module only builds the grammar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nexa_common import schema_reader
from nexa_common.schema_reader import ReadSchema, read_schema
from nexa_common.schemas.text import Tool

from .integer_ranges import integer_rule

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import SchemaConverter

# llama-cpp-python's schema converter is imported where a grammar is built, never at import time:
# only engines with grammar support (engine.GrammarSupport) get grammars, so the ONNX backend runs
# without llama-cpp-python installed.

CALL_PREFIX = '{"tool": "'
CALL_MIDDLE = '", "parameters": '
CALL_SUFFIX = "}"

MAX_GRAMMAR_CHARS = 1_000_000


class SchemaError(ValueError):
    """A schema that cannot become a grammar; the message says why and where."""


@dataclass
class Grammar:
    gbnf: str
    relaxed: list[str] = field(default_factory=list)
    """Where the schema was relaxed (`<where>#<pointer>: <reason>`), for the answer's header."""


def _read(schema: Any, where: str, max_bytes: int, ref_prefix: str) -> ReadSchema:
    if not isinstance(schema, dict):
        raise SchemaError(f"{where} must be a JSON object")
    if len(json.dumps(schema)) > max_bytes:
        raise SchemaError(f"{where} is larger than {max_bytes} bytes")
    try:
        return read_schema(schema, ref_prefix=ref_prefix)
    except schema_reader.SchemaError as exc:
        raise SchemaError(f"{where}, {exc}") from exc


def _converter() -> SchemaConverter:
    from llama_cpp.llama_grammar import RESERVED_NAMES, SchemaConverter

    class BoundedIntegers(SchemaConverter):  # type: ignore[misc]
        """llama-cpp-python's converter, plus integer bounds (it writes any integer for `minimum: 1`)."""

        def visit(self, schema: dict[str, Any], name: str) -> str:
            bounded = "minimum" in schema or "maximum" in schema
            if schema.get("type") == "integer" and bounded and "enum" not in schema and "const" not in schema:
                rule_name = name + "-" if name in RESERVED_NAMES else name or "root"
                rule = integer_rule(schema.get("minimum"), schema.get("maximum"))
                added: str = self._add_rule(rule_name, f"{rule} space")
                return added
            visited: str = super().visit(schema, name)
            return visited

    return BoundedIntegers(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _visit(converter: SchemaConverter, read: ReadSchema, rule: str, where: str) -> str:
    """Add the schema's rules; returns the name of its top rule (`rule`, or a shared primitive's)."""
    # The reader has resolved every reference; its definitions go straight into the converter's
    # table. (The converter's own resolve_refs walks every key of the schema, property names and
    # data values included, and fails on a property called `$ref`.)
    converter._refs.update(read.refs)
    try:
        name: str = converter.visit(read.root, rule)
        return name
    except RecursionError as exc:
        raise SchemaError(f"{where} is too deeply nested or recursive") from exc
    except Exception as exc:  # the converter asserts and raises on what it cannot express
        detail = str(exc).strip() or type(exc).__name__
        raise SchemaError(f"{where} cannot be turned into a grammar: {detail[:200]}") from exc


def _relaxed(read: ReadSchema, where: str) -> list[str]:
    return [f"{where}#{r.pointer}: {r.reason}" for r in read.relaxed]


# The converter's string characters admit raw control characters, which strict JSON parsers
# (and so clients) reject; excluding them keeps every generated string valid JSON.
_CHAR_RULE = re.compile(r'^char ::= \[\^"\\\\\]', re.MULTILINE)
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F]'
# The same for a pattern's `.`, which would otherwise admit a raw quote and end the string early.
_DOT_RULE = re.compile(r"^dot ::= .*$", re.MULTILINE)
_STRICT_DOT = r'dot ::= [^"\\\x7F\x00-\x1F]'


def _finish(converter: SchemaConverter, extra: str = "") -> str:
    grammar = _CHAR_RULE.sub(lambda _: _STRICT_CHAR, converter.format_grammar())
    grammar = _DOT_RULE.sub(lambda _: _STRICT_DOT, grammar) + extra
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise SchemaError("the schema expands into a grammar that is too large")
    return grammar


def _literal(text: str) -> str:
    return json.dumps(text)  # GBNF string literals use JSON's escapes


def tool_call_grammar(tools: Sequence[Tool], allow_text: bool, max_bytes: int) -> Grammar:
    """One call of one of `tools`; with `allow_text`, a plain-text answer is allowed instead
    (a text answer then cannot start with `{`)."""
    converter = _converter()
    branches, relaxed = [], []
    for i, tool in enumerate(tools):
        where = f"the parameters of tool '{tool.function.name}'"
        rule = f"nexa-args{i}"
        read = _read(tool.function.parameters, where, max_bytes, f"{rule}-ref")
        top = _visit(converter, read, rule, where)
        relaxed += _relaxed(read, f"tools[{i}].function.parameters")
        branches.append(f"{_literal(tool.function.name + CALL_MIDDLE)} {top}")
    rules = f"\nnexa-call ::= {_literal(CALL_PREFIX)} ( {' | '.join(branches)} ) {_literal(CALL_SUFFIX)}\n"
    if allow_text:
        rules += "nexa-text ::= [^{] [^\\x00]*\nroot ::= nexa-call | nexa-text\n"
    else:
        rules += "root ::= nexa-call\n"
    return Grammar(_finish(converter, rules), relaxed)


def json_schema_grammar(schema: Any, max_bytes: int, where: str = "response_format.json_schema.schema") -> Grammar:
    converter = _converter()
    read = _read(schema, where, max_bytes, "nexa-out-ref")
    # A named root rule: the converter names a root's properties after the rule, and unnamed
    # ones could collide with the definitions' rules.
    top = _visit(converter, read, "nexa-out", where)
    return Grammar(_finish(converter, f"\nroot ::= {top}\n"), _relaxed(read, where))


def json_object_grammar() -> Grammar:
    from llama_cpp.llama_grammar import JSON_GBNF

    return Grammar(JSON_GBNF)
