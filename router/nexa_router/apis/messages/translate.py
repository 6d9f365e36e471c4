"""A Messages request as a chat request: the system prompt, content blocks (text, tool_use,
tool_result), tools with `input_schema` and tool_choice become chat's messages and fields.

`output_config.format` (structured output) becomes chat's json_schema response_format, so the
answer is grammar-constrained to the schema. Refused with a 400 that names them: image and document blocks (the models here read text only),
server tools (web search, bash, text editor, ...), thinking blocks (no model here produces them).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from nexa_common.errors import APIError
from nexa_common.schemas.messages import CountTokensRequest, InputMessage, MessagesRequest
from nexa_common.schemas.text import FunctionDefinition

_MEDIA_BLOCKS = ("image", "document", "search_result", "container_upload")
BLOCK_TYPES = {"user": ("text", "tool_result"), "assistant": ("text", "tool_use"), "system": ("text",)}


def _bad(message: str, param: str | None = None, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def _block_type(block: Any, where: str) -> str:
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        raise _bad(f"{where} must be a content block: an object with a 'type'.", where)
    return kind


def _text_of(block: dict[str, Any], where: str) -> str:
    text = block.get("text")
    if not isinstance(text, str):
        raise _bad(f"{where}.text must be a string.", f"{where}.text")
    return text


def _unsupported(kind: str, where: str, allowed: tuple[str, ...]) -> APIError:
    if kind in _MEDIA_BLOCKS:
        return _bad(
            f"{where}: '{kind}' content blocks are not supported: the models here read text only.",
            where,
            "unsupported_content_type",
        )
    return _bad(
        f"{where}: content blocks of type '{kind}' are not supported here; use {', '.join(allowed)}.",
        where,
        "unsupported_content_type",
    )


def _text_blocks(blocks: list[Any], where: str) -> list[str]:
    """The texts of a list that may hold text blocks only (`where` names the list)."""
    texts = []
    for index, block in enumerate(blocks):
        at = f"{where}[{index}]"
        kind = _block_type(block, at)
        if kind != "text":
            raise _unsupported(kind, at, ("text",))
        texts.append(_text_of(block, at))
    return texts


def system_text(system: str | list[dict[str, Any]] | None) -> str | None:
    if system is None or isinstance(system, str):
        return system or None
    return "\n\n".join(_text_blocks(system, "system")) or None


def _tool_result_text(block: dict[str, Any], where: str) -> str:
    content = block.get("content", "")
    if isinstance(content, list):
        content = "\n".join(_text_blocks(content, f"{where}.content"))
    if not isinstance(content, str):
        raise _bad(f"{where}.content must be a string or a list of text blocks.", f"{where}.content")
    # The model should know a tool failed; chat has no flag for it, so it is said in words.
    return f"Error: {content}" if block.get("is_error") is True else content


def _turn(message: InputMessage, index: int, calls: set[str]) -> list[dict[str, Any]]:
    """One Messages turn as chat messages: tool results become tool messages (before the user's text),
    an assistant's tool_use blocks its tool calls."""
    where = f"messages[{index}]"
    if isinstance(message.content, str):
        return [{"role": message.role, "content": message.content}]
    texts: list[str] = []
    tool_messages: list[dict[str, Any]] = []
    tool_calls: list[dict[str, Any]] = []
    for number, block in enumerate(message.content):
        at = f"{where}.content[{number}]"
        kind = _block_type(block, at)
        if kind not in BLOCK_TYPES[message.role]:
            raise _unsupported(kind, at, BLOCK_TYPES[message.role])
        if kind == "text":
            texts.append(_text_of(block, at))
        elif kind == "tool_use":
            call_id, name, arguments = block.get("id"), block.get("name"), block.get("input", {})
            if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
                raise _bad(f"{at}: a tool_use block needs a string 'id' and 'name'.", at)
            if not isinstance(arguments, dict):
                raise _bad(f"{at}.input must be an object.", f"{at}.input")
            calls.add(call_id)
            tool_calls.append(
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
            )
        else:  # tool_result
            use_id = block.get("tool_use_id")
            if not isinstance(use_id, str) or use_id not in calls:
                raise _bad(
                    f"{at}: tool_result.tool_use_id {use_id!r} answers no tool_use block of an earlier assistant turn.",
                    f"{at}.tool_use_id",
                )
            tool_messages.append({"role": "tool", "tool_call_id": use_id, "content": _tool_result_text(block, at)})
    turns = list(tool_messages)
    text = "\n\n".join(texts)
    if message.role == "assistant":
        turns.append(
            {"role": "assistant", "content": text or None, **({"tool_calls": tool_calls} if tool_calls else {})}
        )
    elif text or not tool_messages:
        turns.append({"role": message.role, "content": text})
    return turns


def chat_messages(system: str | list[dict[str, Any]] | None, messages: list[InputMessage]) -> list[dict[str, Any]]:
    prompt = system_text(system)
    chat: list[dict[str, Any]] = [{"role": "system", "content": prompt}] if prompt else []
    calls: set[str] = set()
    for index, message in enumerate(messages):
        chat += _turn(message, index, calls)
    return chat


def chat_tools(tools: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    if not tools:
        return None
    unsupported = [(i, t.get("type") if isinstance(t, dict) else None) for i, t in enumerate(tools)]
    unsupported = [(i, kind) for i, kind in unsupported if kind not in (None, "custom")]
    if unsupported:
        names = ", ".join(dict.fromkeys(str(kind) for _, kind in unsupported))
        where = ", ".join(f"tools[{i}]" for i, _ in unsupported)
        raise _bad(
            f"Unsupported tool type(s): {names} ({where}). This server runs client tools only "
            f"(name, description, input_schema); server tools are not available.",
            "tools",
            "unsupported_tool_type",
        )
    converted = []
    for index, tool in enumerate(tools):
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise _bad(
                f"tools[{index}].input_schema: an object (the tool's JSON schema) is required.", f"tools[{index}]"
            )
        spec = {"name": tool.get("name"), "description": tool.get("description"), "parameters": schema}
        try:
            function = FunctionDefinition.model_validate({k: v for k, v in spec.items() if v is not None})
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]).replace("parameters", "input_schema")
            raise _bad(f"tools[{index}].{field}: {first['msg']}", f"tools[{index}].{field}") from None
        converted.append({"type": "function", "function": function.model_dump(exclude_none=True)})
    return converted


def chat_tool_choice(choice: dict[str, Any] | None, tools: list[dict[str, Any]] | None) -> Any:
    if choice is None:
        return None
    kind = choice.get("type")
    if kind in ("auto", "any", "none") and not tools and kind != "none":
        raise _bad(f"tool_choice '{kind}' needs tools to choose from.", "tool_choice")
    if kind == "auto":
        return "auto"
    if kind == "any":
        return "required"
    if kind == "none":
        return "none"
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or name not in {t["function"]["name"] for t in tools or []}:
            raise _bad(f"tool_choice names the tool {name!r}, which is not among the tools.", "tool_choice")
        return {"type": "function", "function": {"name": name}}
    raise _bad(f"Unsupported tool_choice type {kind!r}: use auto, any, tool or none.", "tool_choice")


def _prompt_side(body: MessagesRequest | CountTokensRequest) -> dict[str, Any]:
    request: dict[str, Any] = {"model": body.model, "messages": chat_messages(body.system, body.messages)}
    tools = chat_tools(body.tools)
    if tools:
        request["tools"] = tools
    choice = chat_tool_choice(body.tool_choice, tools)
    if choice is not None and tools:
        request["tool_choice"] = choice
    return request


def chat_request(body: MessagesRequest) -> dict[str, Any]:
    """The chat completion request (streamed, with usage) that answers this Messages request."""
    request = _prompt_side(body)
    request["max_tokens"] = body.max_tokens
    request["stream_options"] = {"include_usage": True}
    if body.stop_sequences:
        request["stop"] = body.stop_sequences
    for name in ("temperature", "top_p", "top_k"):
        value = getattr(body, name)
        if value is not None:
            request[name] = value
    output = body.output_config.format if body.output_config else None
    if output is not None:
        request["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": output.schema_},
        }
    return request


def tokenize_request(body: CountTokensRequest) -> dict[str, Any]:
    """What the text service's /v1/tokenize counts: the prompt the chat request would have."""
    return _prompt_side(body)
