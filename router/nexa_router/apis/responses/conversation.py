"""A Responses request as a chat request: input items (and the stored conversation they continue)
become chat messages; function tools, tool_choice and text.format become chat's fields.

Items are stored normalized (every item with an `id`, messages with content parts), which is also
what `GET /v1/responses/{id}/input_items` lists.
"""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import ValidationError

from nexa_common.errors import APIError
from nexa_common.schemas.responses import ResponsesRequest
from nexa_common.schemas.text import FunctionDefinition

ITEM_TYPES = ("message", "function_call", "function_call_output")
_ROLES = ("user", "system", "developer", "assistant")
_TEXT_PARTS = ("input_text", "output_text", "text")
_MEDIA_PARTS = ("input_image", "input_file", "input_audio")


def new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _bad(message: str, param: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _string(item: dict[str, Any], key: str, where: str, *, empty: bool = False) -> str:
    value = item.get(key)
    if not isinstance(value, str) or (not empty and not value):
        raise _bad(f"{where}.{key} must be a{'' if empty else ' non-empty'} string.", f"{where}.{key}")
    return value


def _parts(content: Any, role: str, where: str) -> list[dict[str, Any]]:
    """Text content parts (`input_text` for what the user side says, `output_text` for the assistant);
    `where` names the field holding them (`input[2].content`)."""
    kind = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        return [{"type": kind, "text": content, **({"annotations": []} if role == "assistant" else {})}]
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string or a list of content parts.", where)
    parts = []
    for index, part in enumerate(content):
        at = f"{where}[{index}]"
        part_type = part.get("type") if isinstance(part, dict) else None
        if part_type in _MEDIA_PARTS:
            raise _bad(
                f"{at}: '{part_type}' content is not supported: the models here read text only.",
                at,
                "unsupported_content_type",
            )
        if part_type == "refusal" and isinstance(part, dict) and isinstance(part.get("refusal"), str):
            parts.append({"type": "refusal", "refusal": part["refusal"]})
            continue
        if part_type not in _TEXT_PARTS or not isinstance(part, dict):
            raise _bad(
                f"{at}: content parts must be objects of type input_text or output_text (got {part_type!r}).",
                at,
                "unsupported_content_type",
            )
        text = _string(part, "text", at, empty=True)
        parts.append({"type": kind, "text": text, **({"annotations": []} if role == "assistant" else {})})
    return parts


def _item(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise _bad(f"{where} must be an object (an input item).", where)
    item_type = raw.get("type", "message" if "role" in raw else None)
    if item_type == "message":
        role = raw.get("role")
        if role not in _ROLES:
            raise _bad(f"{where}.role must be one of {', '.join(_ROLES)} (got {role!r}).", f"{where}.role")
        return {
            "id": raw.get("id") if isinstance(raw.get("id"), str) else new_id("msg"),
            "type": "message",
            "role": role,
            "content": _parts(raw.get("content"), role, f"{where}.content"),
            "status": "completed",
        }
    if item_type == "function_call":
        call = {
            "id": raw.get("id") if isinstance(raw.get("id"), str) else new_id("fc"),
            "type": "function_call",
            "call_id": _string(raw, "call_id", where),
            "name": _string(raw, "name", where),
            "arguments": _string(raw, "arguments", where, empty=True),
            "status": "completed",
        }
        if raw.get("namespace") is not None:
            call["namespace"] = _string(raw, "namespace", where)
        return call
    if item_type == "function_call_output":
        output = raw.get("output")
        if isinstance(output, list):
            output = "".join(p.get("text", "") for p in _parts(output, "user", f"{where}.output"))
        if not isinstance(output, str):
            raise _bad(f"{where}.output must be a string (or a list of input_text parts).", f"{where}.output")
        return {
            "id": raw.get("id") if isinstance(raw.get("id"), str) else new_id("fco"),
            "type": "function_call_output",
            "call_id": _string(raw, "call_id", where),
            "output": output,
            "status": "completed",
        }
    raise _bad(
        f"{where}: input items of type {item_type!r} are not supported; this server takes "
        f"{', '.join(ITEM_TYPES)} items.",
        f"{where}.type",
        "unsupported_item_type",
    )


def input_items(body: ResponsesRequest) -> list[dict[str, Any]]:
    """The request's `input` as normalized items."""
    if isinstance(body.input, str):
        return [_item({"type": "message", "role": "user", "content": body.input}, "input")]
    if not body.input:
        raise _bad("input must hold at least one item.", "input")
    return [_item(raw, f"input[{index}]") for index, raw in enumerate(body.input)]


def qualified(call: dict[str, Any]) -> str:
    """A function call's name as chat knows it (`namespace.name` for a namespaced function)."""
    return f"{call['namespace']}.{call['name']}" if call.get("namespace") else str(call["name"])


def _text(item: dict[str, Any]) -> list[dict[str, str]]:
    return [{"type": "text", "text": p.get("text", p.get("refusal", ""))} for p in item["content"]]


def chat_messages(instructions: str | None, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items as chat messages: consecutive function calls (and the assistant text before them) make one
    assistant turn with tool calls; each function call output is a tool message answering its call."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": instructions}] if instructions else []
    calls: set[str] = set()
    for index, item in enumerate(items):
        if item["type"] == "message":
            messages.append({"role": item["role"], "content": _text(item)})
        elif item["type"] == "function_call":
            calls.add(item["call_id"])
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": qualified(item), "arguments": item["arguments"]},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        else:
            if item["call_id"] not in calls:
                raise _bad(
                    f"No function call with call_id '{item['call_id']}' comes before this function_call_output "
                    f"(item {index} of the conversation).",
                    "input",
                    "unknown_call_id",
                )
            messages.append({"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]})
    return messages


def _functions(tools: list[Any]) -> list[tuple[str, dict[str, Any]]]:
    """The function tools, as (where, tool) pairs; a `namespace` tool's functions are listed under
    their qualified names (`namespace.name`). Any other type is refused, all of them named at once."""
    functions: list[tuple[str, dict[str, Any]]] = []
    unsupported: list[tuple[str, str]] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            functions.append((f"tools[{index}]", tool))
        elif kind == "namespace" and isinstance(tool.get("name"), str) and isinstance(tool.get("tools"), list):
            for number, inner in enumerate(tool["tools"]):
                where = f"tools[{index}].tools[{number}]"
                if isinstance(inner, dict) and inner.get("type") == "function" and isinstance(inner.get("name"), str):
                    functions.append((where, {**inner, "name": f"{tool['name']}.{inner['name']}"}))
                else:
                    unsupported.append((where, str(inner.get("type") if isinstance(inner, dict) else None)))
        else:
            unsupported.append((f"tools[{index}]", str(kind)))
    if unsupported:
        names = ", ".join(dict.fromkeys(kind for _, kind in unsupported))
        where = ", ".join(at for at, _ in unsupported)
        raise _bad(
            f"Unsupported tool type(s): {names} ({where}). This server runs function tools only (type "
            f"'function', also inside a 'namespace').",
            "tools",
            "unsupported_tool_type",
        )
    return functions


def chat_tools(tools: list[Any] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    converted = []
    for where, tool in _functions(tools):
        spec = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
        try:
            function = FunctionDefinition.model_validate(spec)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise _bad(f"{where}.{field}: {first['msg']}", f"{where}.{field}") from None
        converted.append({"type": "function", "function": function.model_dump(exclude_none=True)})
    return converted


def namespaces(tools: list[Any] | None) -> dict[str, tuple[str, str]]:
    """Qualified function name → (namespace, name), to answer a call with the namespace it came from."""
    found = {}
    for tool in tools or []:
        if isinstance(tool, dict) and tool.get("type") == "namespace":
            for inner in tool.get("tools") or []:
                if isinstance(inner, dict) and isinstance(inner.get("name"), str):
                    found[f"{tool['name']}.{inner['name']}"] = (tool["name"], inner["name"])
    return found


def chat_tool_choice(choice: str | dict[str, Any] | None, tools: list[dict[str, Any]] | None) -> Any:
    if choice is None or choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and isinstance(choice.get("name"), str):
        names = {t["function"]["name"] for t in tools or []}
        if choice["name"] not in names:
            raise _bad(
                f"tool_choice names the function '{choice['name']}', which is not among the tools.", "tool_choice"
            )
        return {"type": "function", "function": {"name": choice["name"]}}
    kind = choice.get("type") if isinstance(choice, dict) else choice
    raise _bad(
        f"Unsupported tool_choice {kind!r}: use 'auto', 'none', 'required' or {{\"type\": \"function\", \"name\": ...}}.",
        "tool_choice",
        "unsupported_tool_choice",
    )


def chat_response_format(body: ResponsesRequest) -> dict[str, Any] | None:
    fmt = body.text.format if body.text else None
    if fmt is None or fmt.type == "text":
        return None
    if fmt.type == "json_object":
        return {"type": "json_object"}
    schema = {"name": fmt.name or "response", "schema": fmt.schema_, "strict": fmt.strict}
    if fmt.description:
        schema["description"] = fmt.description
    return {"type": "json_schema", "json_schema": schema}


def chat_request(body: ResponsesRequest, items: list[dict[str, Any]]) -> dict[str, Any]:
    """The chat completion request (streamed, with usage) that answers this Responses request."""
    request: dict[str, Any] = {
        "messages": chat_messages(body.instructions, items),
        "stream_options": {"include_usage": True},
    }
    tools = chat_tools(body.tools)
    if body.model:
        request["model"] = body.model
    if tools:
        request["tools"] = tools
        if body.tool_choice is not None:
            request["tool_choice"] = chat_tool_choice(body.tool_choice, tools)
    elif body.tool_choice not in (None, "auto", "none"):
        raise _bad("tool_choice needs tools to choose from.", "tool_choice")
    response_format = chat_response_format(body)
    if response_format is not None:
        request["response_format"] = response_format
    if body.max_output_tokens is not None:
        request["max_tokens"] = body.max_output_tokens
    if body.temperature is not None:
        request["temperature"] = body.temperature
    if body.top_p is not None:
        request["top_p"] = body.top_p
    return request


def tools_active(body: ResponsesRequest) -> bool:
    return bool(body.tools) and body.tool_choice != "none"
