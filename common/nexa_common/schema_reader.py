"""A JSON-schema reader that follows the schema's grammar, for everything that turns a schema into a
grammar: tool parameters, `response_format.json_schema` and Responses' `text.format`.

A schema is a tree of three kinds of places, and the reader tells them apart: schema objects, whose
keys are keywords (`type`, `pattern`, `maxLength`, ...); maps from names to schemas (`properties`,
`patternProperties`, `$defs`, `definitions`, `dependentSchemas`), whose keys are names a user
chose (a property may well be called `pattern`, `type` or `$ref`); and data values (`default`,
`enum`, `const`, `examples`), which are JSON documents and never keywords. The reader walks only
schema objects as schemas.

What it returns (`read_schema`) is the same schema normalised for llama.cpp's grammar converter:
annotations dropped, `$ref`s resolved to named definitions, `allOf` merged, `type` lists and
`nullable` spelled as `anyOf`, and what a grammar cannot or need not enforce relaxed, each
relaxation recorded with its JSON pointer:
- a `maxLength`/`maxItems` above `max_repeat` (a grammar unrolls every repetition) is dropped;
  the output is bounded by the request's token limit instead;
- validation keywords a grammar cannot express (`uniqueItems`, `not`, bounds of non-integer
  numbers, ...) and patterns it cannot translate are not enforced.
Integer bounds are kept, as one inclusive `minimum`/`maximum` pair, for the grammar to enforce.
Only what cannot be honoured at all is a `SchemaError` (a 400), naming the JSON pointer of the
offending part: a malformed keyword value, a reference outside the schema or to nothing, a minimum
length above `max_repeat`, a pattern asking for a NUL character, contradictory bounds, nesting
beyond `max_depth`.

Entry point: `read_schema(schema) -> ReadSchema`; `ReadSchema.root` and `.refs` feed the converter.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

RELAXED_HEADER = "X-Nexa-Schema-Relaxed"
"""Response header naming where a request's schemas were relaxed (`<field>#<pointer>: <reason>; ...`)."""
MAX_REPEAT = 2048
"""Largest minimum count (`minLength`, `minItems`, `{n,}`) a grammar is built with: the converter
spells each required repetition out."""
MAX_SPAN = 1000
"""Largest span between a minimum and a maximum count: the converter nests one optional group per
allowed extra repetition, and llama.cpp refuses a grammar nested deeper than about 1000 groups."""
MAX_DEPTH = 32
MAX_NODES = 20_000

TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})
ANNOTATIONS = frozenset(
    {
        "title", "description", "default", "examples", "example", "$comment", "deprecated", "readOnly",
        "writeOnly", "$schema", "$id", "$anchor", "$dynamicAnchor", "$vocabulary", "contentEncoding",
        "contentMediaType", "contentSchema", "discriminator", "xml", "externalDocs", "strict",
    }
)  # fmt: skip
"""Keywords that describe and never constrain: dropped (as are unknown keywords and `x-` extensions)."""
UNENFORCED = frozenset(
    {
        "not", "if", "then", "else", "dependentSchemas", "dependentRequired", "dependencies",
        "patternProperties", "propertyNames", "contains", "minContains", "maxContains", "uniqueItems",
        "multipleOf", "minProperties", "maxProperties", "unevaluatedProperties", "unevaluatedItems",
        "additionalItems",
    }
)  # fmt: skip
"""Validation keywords a grammar does not express: accepted, not enforced, reported as relaxed."""
GRAMMAR_FORMATS = frozenset({"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"})
"""String formats the grammar converter enforces; any other `format` is an annotation."""
_COUNTS = ("minLength", "maxLength", "minItems", "maxItems")
_BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum")
"""Enforced for integers (as bounds of an integer rule); for other numbers not enforced."""
_KEPT = frozenset({"type", "enum", "const", "pattern", "format", "required", *_COUNTS, *_BOUNDS})
_NUL_ESCAPE = re.compile(r"\\(?:x0{2}|u0{4}|x\{0+\}|0(?![0-9]))")
# What llama.cpp's pattern translator cannot express: lookarounds and other `(?` groups, back
# references, word boundaries, Unicode classes, negated shorthand classes, POSIX classes.
_UNTRANSLATABLE = re.compile(r"\\(?:[1-9bBpPkDWSc]|x\{)|\(\?|\[\[:")
# Shorthand classes, spelled for a JSON string (raw tabs and newlines are not allowed in one).
_NOT_IN_JSON_STRING = '"\\\\\\x00-\\x1F'
_SHORTHAND = {"d": ("[0-9]", "0-9"), "w": ("[A-Za-z0-9_]", "A-Za-z0-9_"), "s": ("[ ]", " ")}
_REPEAT = re.compile(r"(?<!\\)\{(\d+)(?:(,)(\d*))?\}")


class SchemaError(ValueError):
    """A schema that cannot be honoured; `pointer` is the JSON pointer of the offending part."""

    def __init__(self, pointer: str, message: str) -> None:
        super().__init__(message)
        self.pointer = pointer
        self.message = message

    def __str__(self) -> str:
        return f"at '#{self.pointer}': {self.message}"


@dataclass(frozen=True)
class Relaxation:
    pointer: str
    """Where the relaxed keyword is (its own JSON pointer)."""
    reason: str


@dataclass
class ReadSchema:
    root: dict[str, Any]
    """The normalised schema (possibly `{"$ref": ...}` when the root refers to itself)."""
    refs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Each `$ref` of `root` and of the definitions, mapped to its normalised target."""
    relaxed: list[Relaxation] = field(default_factory=list)


def read_schema(
    schema: Any, *, max_repeat: int = MAX_REPEAT, max_depth: int = MAX_DEPTH, ref_prefix: str = "nexa-ref"
) -> ReadSchema:
    """Read `schema` (a JSON schema as parsed JSON). `ref_prefix` names the definitions, so several
    schemas can share one grammar (each tool of a request gets its own prefix)."""
    reader = _Reader(schema, max_repeat, max_depth, ref_prefix)
    root = reader.schema(schema, "", 0)
    if root is None:
        raise SchemaError("", "the schema is `false`: no value can match it")
    return ReadSchema(root, reader.refs, reader.relaxed)


def relaxed_header(entries: list[str], limit: int = 2000) -> str:
    """The header's value: printable ASCII only (pointers carry user-chosen names), bounded in length."""
    text = "; ".join(entries)
    text = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def escape_pointer(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


def _no_nul(value: Any, at: str, what: str) -> None:
    """Text the grammar makes the model write literally may not hold a NUL: no token can produce
    one, and llama.cpp ends the whole process when a grammar leaves nothing to sample."""
    if isinstance(value, str):
        found = "\x00" in value
    elif isinstance(value, dict):
        found = any("\x00" in k for k in value) or any(_has_nul(v) for v in value.values())
    elif isinstance(value, list):
        found = any(_has_nul(v) for v in value)
    else:
        found = False
    if found:
        raise SchemaError(at, f"{what} contains a NUL character, which the model cannot write")


def _has_nul(value: Any) -> bool:
    try:
        _no_nul(value, "", "")
    except SchemaError:
        return True
    return False


def _is_count(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool) and value >= 0) or (
        isinstance(value, float) and value.is_integer() and value >= 0
    )


def _grammar_pattern(pattern: str) -> str | None:
    """`pattern` as the converter takes it: anchored at both ends (JSON Schema patterns match
    anywhere: `.*` pads an unanchored side, which only narrows what is generated), shorthand classes
    spelled out; None when it cannot be translated."""
    try:
        re.compile(pattern)
    except re.error:
        return None
    if _UNTRANSLATABLE.search(pattern):
        return None
    out, in_class, negated, i = [], False, False, 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            nxt = pattern[i + 1]
            out.append(_SHORTHAND[nxt][1 if in_class else 0] if nxt in _SHORTHAND else c + nxt)
            i += 2
            continue
        if c == "[" and not in_class:
            in_class = True
            negated = pattern.startswith("^", i + 1)
        elif c == "]" and in_class:
            in_class = False
            if negated:
                # A negated class would admit a raw quote, backslash or control character, which
                # would end or break the JSON string: they are excluded too.
                out.append(_NOT_IN_JSON_STRING)
        out.append(c)
        i += 1
    core = "".join(out)
    starts = core.startswith("^")
    ends = core.endswith("$") and not core.endswith("\\$")
    core = core[1 if starts else 0 : len(core) - 1 if ends else len(core)]
    if starts and ends and "|" not in core:
        return f"^{core}$"
    return f"^{'' if starts else '.*'}({core}){'' if ends else '.*'}$"


class _Reader:
    def __init__(self, root: Any, max_repeat: int, max_depth: int, ref_prefix: str) -> None:
        self.raw_root = root
        self.max_repeat = max_repeat
        self.max_depth = max_depth
        self.ref_prefix = ref_prefix
        self.refs: dict[str, dict[str, Any]] = {}
        self.relaxed: list[Relaxation] = []
        self._ref_names: dict[str, str] = {}  # target pointer -> synthetic $ref
        self._nodes = 0

    def relax(self, pointer: str, reason: str) -> None:
        self.relaxed.append(Relaxation(pointer, reason))

    # --- schema objects -------------------------------------------------------------------------

    def schema(self, node: Any, at: str, depth: int) -> dict[str, Any] | None:
        """The normalised schema at `at`; None for the `false` schema (nothing matches)."""
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise SchemaError(at, f"the schema has more than {MAX_NODES} parts")
        if depth > self.max_depth:
            raise SchemaError(at, f"the schema is nested more than {self.max_depth} levels deep")
        if node is True:
            return {}
        if node is False:
            return None
        if not isinstance(node, dict):
            raise SchemaError(at, f"a schema must be an object or a boolean, not {type(node).__name__}")
        if "$ref" in node:
            return self._ref(node, at)
        out: dict[str, Any] = {}
        for key, value in node.items():
            where = f"{at}/{escape_pointer(str(key))}"
            if key in _KEPT:
                out[key] = self._keyword(key, value, where)
                if key == "pattern" and not out[key]:
                    del out[key]  # relaxed
            elif key == "properties":
                out[key] = self._properties(value, where, depth)
            elif key == "additionalProperties":
                out[key] = self._additional(value, where, depth)
            elif key == "items":
                out.update(self._items(value, where, depth))
            elif key == "prefixItems":
                out["prefixItems"] = self._schema_list(value, where, depth, allow_false=False)
            elif key in ("anyOf", "oneOf", "allOf"):
                out[key] = self._schema_list(value, where, depth, allow_false=True)
            elif key == "nullable":
                if not isinstance(value, bool):
                    raise SchemaError(where, "'nullable' must be true or false")
                out["nullable"] = value
            elif key in UNENFORCED:
                self.relax(where, f"'{key}' is not enforced by the grammar")
            # Everything else (annotations, `$defs`/`definitions`, unknown and `x-` keywords) is
            # dropped here; definitions are read when a `$ref` reaches them.
        return self._normalise(out, at)

    def _keyword(self, key: str, value: Any, at: str) -> Any:
        if key == "type":
            names = [value] if isinstance(value, str) else value
            if not isinstance(names, list) or not names or not all(isinstance(t, str) and t in TYPES for t in names):
                raise SchemaError(at, f"'type' must be one of {sorted(TYPES)} or a non-empty list of them")
            return value
        if key == "enum":
            if not isinstance(value, list) or not value:
                raise SchemaError(at, "'enum' must be a non-empty list")
            _no_nul(value, at, "'enum'")
            return value  # data: JSON values, never read as keywords
        if key == "const":
            _no_nul(value, at, "'const'")
            return value
        if key == "required":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SchemaError(at, "'required' must be a list of property names")
            return list(dict.fromkeys(value))
        if key == "format":
            if not isinstance(value, str):
                raise SchemaError(at, "'format' must be a string")
            return value
        if key == "pattern":
            return self._pattern(value, at)
        if key in _BOUNDS:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise SchemaError(at, f"'{key}' must be a number")
            return value
        if not _is_count(value):  # the length and item counts
            raise SchemaError(at, f"'{key}' must be a non-negative integer")
        return int(value)

    def _pattern(self, value: Any, at: str) -> str:
        if not isinstance(value, str):
            raise SchemaError(at, "'pattern' must be a string")
        if "\x00" in value or _NUL_ESCAPE.search(value):
            raise SchemaError(at, "'pattern' asks for a NUL character, which the model cannot write")

        def bounded(match: re.Match[str]) -> str:
            low, comma, high = match.group(1), match.group(2), match.group(3)
            if int(low) > self.max_repeat:
                raise SchemaError(at, f"'pattern' repeats at least {low} times; at most {self.max_repeat} is supported")
            if comma and high and int(high) - int(low) > MAX_SPAN:
                self.relax(at, f"'pattern' repetition {{{low},{high}}} spans more than {MAX_SPAN}: upper bound relaxed")
                return "{" + low + ",}"
            return match.group(0)

        translated = _grammar_pattern(_REPEAT.sub(bounded, value))
        if translated is None:
            self.relax(at, "'pattern' uses regex syntax the grammar cannot express; it is not enforced")
            return ""
        return translated

    def _properties(self, value: Any, at: str, depth: int) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise SchemaError(at, "'properties' must be an object mapping names to schemas")
        props: dict[str, Any] = {}
        for name, sub in value.items():  # names are data: `pattern`, `type`, `$ref` are fine here
            _no_nul(name, f"{at}/{escape_pointer(name)}", "the property name")
            read = self.schema(sub, f"{at}/{escape_pointer(name)}", depth + 1)
            props[name] = read if read is not None else False
        return props

    def _additional(self, value: Any, at: str, depth: int) -> Any:
        if isinstance(value, bool):
            return value
        read = self.schema(value, at, depth + 1)
        return False if read is None else read

    def _items(self, value: Any, at: str, depth: int) -> dict[str, Any]:
        if isinstance(value, list):  # draft-07 tuples
            return {"prefixItems": self._schema_list(value, at, depth, allow_false=False)}
        read = self.schema(value, at, depth + 1)
        if read is None:  # `items: false`: no (further) items at all
            return {"items": {}, "nexa_no_items": True}
        return {"items": read}

    def _schema_list(self, value: Any, at: str, depth: int, *, allow_false: bool) -> list[dict[str, Any]]:
        if not isinstance(value, list) or not value:
            raise SchemaError(at, "must be a non-empty list of schemas")
        out = []
        for i, sub in enumerate(value):
            read = self.schema(sub, f"{at}/{i}", depth + 1)
            if read is None:
                if not allow_false:
                    raise SchemaError(f"{at}/{i}", "a tuple item of schema `false` can never be written")
                continue  # an anyOf branch that matches nothing is no branch
            out.append(read)
        if not out:
            raise SchemaError(at, "no branch can match any value")
        return out

    # --- references ---------------------------------------------------------------------------

    def _ref(self, node: dict[str, Any], at: str) -> dict[str, Any]:
        ref = node["$ref"]
        where = f"{at}/$ref"
        if not isinstance(ref, str):
            raise SchemaError(where, "'$ref' must be a string")
        if ref != "#" and not ref.startswith("#/"):
            raise SchemaError(where, f"only references inside the schema ('#/...') are supported, not {ref!r}")
        siblings = [k for k in node if k != "$ref" and k not in ANNOTATIONS and k not in ("$defs", "definitions")]
        for key in siblings:
            self.relax(f"{at}/{escape_pointer(key)}", f"'{key}' beside '$ref' is not enforced")
        target_pointer = unquote(ref[1:])
        name = self._ref_names.get(target_pointer)
        if name is None:
            name = f"#/$defs/{self.ref_prefix}-{len(self._ref_names)}"
            self._ref_names[target_pointer] = name  # before reading: recursive schemas refer back
            read = self.schema(self._resolve(target_pointer, where), target_pointer, 0)
            if read is None:
                raise SchemaError(where, "the reference points at the schema `false`, which nothing matches")
            self.refs[name] = read
        return {"$ref": name}

    def _resolve(self, pointer: str, where: str) -> Any:
        target = self.raw_root
        for raw in pointer.split("/")[1:] if pointer else []:
            part = raw.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                raise SchemaError(where, f"the reference '#{pointer}' points to nothing in the schema")
        return target

    # --- normalisation for the converter --------------------------------------------------------

    def _normalise(self, out: dict[str, Any], at: str) -> dict[str, Any]:
        if "allOf" in out:
            out = self._merge_all_of(out, at)
        if out.pop("nullable", False):
            out = {"anyOf": [out, {"type": "null"}]}
        types = out.get("type")
        if isinstance(types, list):
            types = list(dict.fromkeys(types))
            out["type"] = types[0] if len(types) == 1 else types
        if isinstance(out.get("type"), list) and len(out) > 1:
            # The converter turns a type list into bare types, losing the other keywords: one branch
            # per type keeps them.
            rest = {k: v for k, v in out.items() if k != "type"}
            out = {"anyOf": [self._normalise({**rest, "type": t}, at) for t in out["type"]]}
        for union in ("anyOf", "oneOf"):
            if union in out and len(out) > 1:
                # Siblings of a union hold in every branch (the converter would drop them).
                rest = {k: v for k, v in out.items() if k not in ("anyOf", "oneOf")}
                branches = out.get("anyOf", []) + out.get("oneOf", [])
                out = {"anyOf": [self._normalise(self._merge(rest, branch, at), at) for branch in branches]}
        if "oneOf" in out:
            out = {"anyOf": out["oneOf"]}  # exclusivity is not enforced; each branch is
        self._strings(out, at)
        self._numbers(out, at)
        self._arrays(out, at)
        self._objects(out, at)
        return out

    def _merge_all_of(self, out: dict[str, Any], at: str) -> dict[str, Any]:
        merged = {k: v for k, v in out.items() if k != "allOf"}
        for i, part in enumerate(out["allOf"]):
            part = self._inline(part, f"{at}/allOf/{i}")
            merged = self._merge(merged, part, f"{at}/allOf/{i}")
        return merged

    def _inline(self, part: dict[str, Any], at: str) -> dict[str, Any]:
        """An allOf member to merge: a reference is replaced by its target where that is known."""
        ref = part.get("$ref")
        if ref is None:
            return part
        target = self.refs.get(ref)
        if target is None:  # the member refers back to a schema still being read (recursion)
            self.relax(at, "a recursive 'allOf' member is not merged")
            return {}
        return target

    def _merge(self, a: dict[str, Any], b: dict[str, Any], at: str) -> dict[str, Any]:
        """Both schemas at once (as far as the converter needs): properties and required joined."""
        b = self._inline(b, at)
        merged = dict(a)
        for key, value in b.items():
            if key == "properties" and isinstance(merged.get("properties"), dict):
                merged["properties"] = {**merged["properties"], **value}
            elif key == "required" and "required" in merged:
                merged["required"] = list(dict.fromkeys([*merged["required"], *value]))
            elif key in merged and merged[key] != value:
                self.relax(at, f"'{key}' differs between combined schemas; one of them is enforced")
                merged[key] = value
            else:
                merged[key] = value
        return merged

    def _strings(self, out: dict[str, Any], at: str) -> None:
        low, high = out.get("minLength"), out.get("maxLength")
        self._bounds(out, at, "minLength", "maxLength")
        if "format" in out and out["format"] not in GRAMMAR_FORMATS:
            del out["format"]  # an annotation, as JSON Schema 2020-12 treats formats by default
        if "pattern" in out and (low is not None or high is not None):
            self.relax(f"{at}/pattern", "'minLength'/'maxLength' beside 'pattern' are not enforced")

    def _numbers(self, out: dict[str, Any], at: str) -> None:
        present = [key for key in _BOUNDS if key in out]
        if not present:
            return
        if out.get("type") != "integer":
            for key in present:  # a grammar over decimal digits would be a long way round
                self.relax(f"{at}/{key}", f"'{key}' is not enforced for non-integer numbers")
                del out[key]
            return
        # Integers: one inclusive range.
        lows = [math.ceil(out.pop("minimum"))] if "minimum" in out else []
        highs = [math.floor(out.pop("maximum"))] if "maximum" in out else []
        if "exclusiveMinimum" in out:
            lows.append(math.floor(out.pop("exclusiveMinimum")) + 1)
        if "exclusiveMaximum" in out:
            highs.append(math.ceil(out.pop("exclusiveMaximum")) - 1)
        low, high = max(lows, default=None), min(highs, default=None)
        if low is not None and high is not None and low > high:
            raise SchemaError(f"{at}/{present[0]}", f"no integer lies between {low} and {high}")
        if low is not None:
            out["minimum"] = low
        if high is not None:
            out["maximum"] = high

    def _arrays(self, out: dict[str, Any], at: str) -> None:
        self._bounds(out, at, "minItems", "maxItems")
        if out.pop("nexa_no_items", False):
            if "prefixItems" in out:
                out.pop("items", None)
            else:
                out["maxItems"] = 0
        if "prefixItems" in out:
            # Items after the tuple: the grammar writes the tuple alone, which is valid.
            out.pop("items", None)
            for key in ("minItems", "maxItems"):
                if key in out:
                    self.relax(f"{at}/{key}", f"'{key}' beside a tuple ('prefixItems') is not enforced")
                    del out[key]
        elif ("minItems" in out or "maxItems" in out) and "items" not in out:
            out["items"] = {}  # the converter applies the counts only to arrays with items

    def _bounds(self, out: dict[str, Any], at: str, low_key: str, high_key: str) -> None:
        low, high = out.get(low_key), out.get(high_key)
        if low is not None and high is not None and low > high:
            raise SchemaError(f"{at}/{low_key}", f"'{low_key}' {low} is above '{high_key}' {high}: nothing matches")
        if low is not None and low > self.max_repeat:
            raise SchemaError(
                f"{at}/{low_key}", f"'{low_key}' {low} is above the {self.max_repeat} a grammar can enforce"
            )
        if high is not None and high - (low or 0) > MAX_SPAN:
            self.relax(
                f"{at}/{high_key}", f"'{high_key}' {high} too large for a grammar, relaxed: max_tokens bounds it"
            )
            del out[high_key]

    def _objects(self, out: dict[str, Any], at: str) -> None:
        props = out.get("properties")
        required = out.get("required", [])
        if props is None and not required:
            return
        props = dict(props or {})
        for name, sub in list(props.items()):
            if sub is False:  # a property that can never be present
                if name in required:
                    raise SchemaError(
                        f"{at}/properties/{escape_pointer(name)}", "a required property of schema `false`"
                    )
                del props[name]
        for name in required:
            # The converter writes only required names it has a schema for.
            props.setdefault(name, {})
        out["properties"] = props
