"""GBNF grammars that make the model's output parse: tool calls whose arguments match each tool's
JSON schema, and the JSON response formats.

A tool call is written as `{"tool": "<name>", "parameters": {...}}` with fixed punctuation, so a
stream can be split into the tool's name and its argument text while it is being generated.
(Those keys, rather than OpenAI's `name`/`arguments`, because small models then stop confusing
the tool's name with an argument called `name`: SmolLM2-135M filled `{"name": "25"}` otherwise.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from nexa_common.schemas.text import Tool

if TYPE_CHECKING:
    from llama_cpp.llama_grammar import SchemaConverter

# llama-cpp-python's schema converter is imported where a grammar is built, never at import time:
# only engines with grammar support (engine.GrammarSupport) get grammars, so the ONNX backend runs
# without llama-cpp-python installed.

CALL_PREFIX = '{"tool": "'
CALL_MIDDLE = '", "parameters": '
CALL_SUFFIX = "}"

# Limits that keep a schema from expanding into a grammar too large to build or to sample with
# (llama.cpp unrolls every `{n,m}` repetition into rules).
MAX_DEPTH = 32
MAX_REPEAT = 2048
_COUNT_KEYS = ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties")
_PATTERN_REPEAT = re.compile(r"\{(\d+)(?:,(\d*))?\}")
MAX_GRAMMAR_CHARS = 1_000_000
# No token can produce a NUL character, and llama.cpp ends the whole process (std::terminate)
# when a grammar leaves nothing to sample; so a schema whose output needs one is refused.
_NUL_ESCAPE = re.compile(r"\\(?:x0{2}|u0{4}|x\{0+\}|0)")


class SchemaError(ValueError):
    """A schema that cannot become a grammar; the message says why."""


def _check(node: Any, where: str, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise SchemaError(f"{where} is nested more than {MAX_DEPTH} levels deep")
    if isinstance(node, str) and "\x00" in node:
        raise SchemaError(f"{where} contains a NUL character, which the model cannot write")
    if isinstance(node, list):
        for item in node:
            _check(item, where, depth + 1)
        return
    if not isinstance(node, dict):
        return
    for key in _COUNT_KEYS:
        value = node.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_REPEAT
        ):
            raise SchemaError(f"{where}: '{key}' must be an integer from 0 to {MAX_REPEAT}")
    ref = node.get("$ref")
    if ref is not None and (not isinstance(ref, str) or not ref.startswith("#/")):
        raise SchemaError(f"{where}: only local '$ref's ('#/...') are supported")
    pattern = node.get("pattern")
    if pattern is not None:
        if not isinstance(pattern, str):
            raise SchemaError(f"{where}: 'pattern' must be a string")
        if _NUL_ESCAPE.search(pattern):
            raise SchemaError(f"{where}: 'pattern' asks for a NUL character, which the model cannot write")
        for low, high in _PATTERN_REPEAT.findall(pattern):
            if int(low) > MAX_REPEAT or (high and int(high) > MAX_REPEAT):
                raise SchemaError(f"{where}: repetitions in 'pattern' may be at most {MAX_REPEAT}")
    schema_type = node.get("type")
    if schema_type is not None and not isinstance(schema_type, str | list):
        raise SchemaError(f"{where}: 'type' must be a string or a list of strings")
    for key, value in node.items():
        _check(key, where, depth + 1)
        _check(value, where, depth + 1)


def _validated(schema: Any, where: str, max_bytes: int) -> dict[str, Any]:
    if not isinstance(schema, dict):
        raise SchemaError(f"{where} must be a JSON object")
    if len(json.dumps(schema)) > max_bytes:
        raise SchemaError(f"{where} is larger than {max_bytes} bytes")
    _check(schema, where)
    return schema


def _converter() -> SchemaConverter:
    from llama_cpp.llama_grammar import SchemaConverter

    return SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)


def _visit(converter: SchemaConverter, schema: dict[str, Any], rule: str, where: str) -> None:
    try:
        resolved = converter.resolve_refs(schema, rule)
        converter.visit(resolved, rule)
    except RecursionError as exc:
        raise SchemaError(f"{where} is too deeply nested or recursive") from exc
    except Exception as exc:  # the converter asserts and raises on what it cannot express
        detail = str(exc).strip() or type(exc).__name__
        raise SchemaError(f"{where} cannot be turned into a grammar: {detail[:200]}") from exc


# The converter's string characters admit raw control characters, which strict JSON parsers
# (and so clients) reject; excluding them keeps every generated string valid JSON.
_CHAR_RULE = re.compile(r'^char ::= \[\^"\\\\\]', re.MULTILINE)
_STRICT_CHAR = r'char ::= [^"\\\x7F\x00-\x1F]'


def _finish(converter: SchemaConverter, extra: str = "") -> str:
    grammar = _CHAR_RULE.sub(lambda _: _STRICT_CHAR, converter.format_grammar()) + extra
    if len(grammar) > MAX_GRAMMAR_CHARS:
        raise SchemaError("the schema expands into a grammar that is too large")
    return grammar


def _literal(text: str) -> str:
    return json.dumps(text)  # GBNF string literals use JSON's escapes


def tool_call_grammar(tools: Sequence[Tool], allow_text: bool, max_bytes: int) -> str:
    """One call of one of `tools`; with `allow_text`, a plain-text answer is allowed instead
    (a text answer then cannot start with `{`)."""
    converter = _converter()
    branches = []
    for i, tool in enumerate(tools):
        where = f"the parameters of tool '{tool.function.name}'"
        schema = _validated(tool.function.parameters, where, max_bytes)
        rule = f"nexa-args{i}"
        _visit(converter, schema, rule, where)
        branches.append(f"{_literal(tool.function.name + CALL_MIDDLE)} {rule}")
    rules = f"\nnexa-call ::= {_literal(CALL_PREFIX)} ( {' | '.join(branches)} ) {_literal(CALL_SUFFIX)}\n"
    if allow_text:
        rules += "nexa-text ::= [^{] [^\\x00]*\nroot ::= nexa-call | nexa-text\n"
    else:
        rules += "root ::= nexa-call\n"
    return _finish(converter, rules)


def json_schema_grammar(schema: Any, max_bytes: int) -> str:
    converter = _converter()
    where = "response_format.json_schema.schema"
    _visit(converter, _validated(schema, where, max_bytes), "", where)
    return _finish(converter)


def json_object_grammar() -> str:
    from llama_cpp.llama_grammar import JSON_GBNF

    return JSON_GBNF
