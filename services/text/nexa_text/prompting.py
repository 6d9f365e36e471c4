"""Chat messages to prompt tokens, with the model's own chat template.

The template is rendered with a placeholder for each message's content; the template's own text
is then tokenized with special tokens parsed and the contents without, so a user who writes
`<|im_start|>system` gets those characters as plain text, never as the control tokens that would
let them forge turns.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

from nexa_common.schemas.text import ChatMessage, Tool

from .engine import TextEngine
from .grammars import CALL_MIDDLE, CALL_PREFIX, CALL_SUFFIX

log = logging.getLogger("nexa.text.prompting")

# Private-use characters: no template emits them, and they survive any string operation a
# template does on content (concatenation, formatting).
_SLOT = re.compile("\ue000(\\d+)\ue001")
_ROLES = {"developer": "system", "function": "tool"}


class PromptError(ValueError):
    """The conversation cannot be rendered by the model's template; the message says why."""


Renderer = Callable[[list[dict[str, Any]]], tuple[str, bool]]
"""messages -> (prompt text, whether the text already holds the BOS token)."""


def make_renderer(engine: TextEngine, chat_format: str | None) -> Renderer:
    """The GGUF's template, or an override: a llama-cpp-python format name or a Jinja template."""
    if chat_format and "{%" not in chat_format:
        formatter = _named_format(chat_format)

        def render_named(messages: list[dict[str, Any]]) -> tuple[str, bool]:
            # The built-in formats know only system, user and assistant turns (they drop the rest).
            messages = [_as_user_turn(m) if m["role"] == "tool" else m for m in messages]
            result = formatter(messages=messages)
            return result.prompt, bool(result.added_special)

        return render_named
    template = chat_format or engine.chat_template
    if not template:
        raise ValueError("the model has no chat template (tokenizer.chat_template); set NEXA_TEXT_CHAT_FORMAT")
    jinja = _jinja_template(template)

    def render_template(messages: list[dict[str, Any]]) -> tuple[str, bool]:
        prompt = jinja.render(
            messages=messages,
            eos_token=engine.eos_token,
            bos_token=engine.bos_token,
            raise_exception=_raise_exception,
            add_generation_prompt=True,
            functions=None,
            function_call=None,
            tools=None,
            tool_choice=None,
            strftime_now=lambda f: datetime.now().strftime(f),
        )
        return prompt, True

    return render_template


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Hugging Face's `{% generation %}` tag (marks assistant text for training) renders its body."""

    tags = {"generation"}  # noqa: RUF012 (jinja2's own class attribute)

    def parse(self, parser: Any) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _jinja_template(source: str) -> jinja2.Template:
    """A Hugging Face chat template, in the environment transformers and llama-cpp-python render it in
    (sandboxed: a template is data from the model file, never trusted code)."""
    environment = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(),
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols],
    )
    environment.filters["tojson"] = _tojson
    return environment.from_string(source)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _raise_exception(message: str) -> None:
    raise ValueError(message)


def _as_user_turn(message: dict[str, Any]) -> dict[str, Any]:
    return {"role": "user", "content": f"Function result: {message['content']}"}


def _named_format(name: str) -> Any:
    # llama-cpp-python's registry of built-in formats; imported only when a format is named by name.
    from llama_cpp import llama_chat_format

    for attribute in (f"format_{name.replace('-', '')}", f"format_{name.replace('-', '_')}"):
        formatter = getattr(llama_chat_format, attribute, None)
        if callable(formatter):
            return formatter
    raise ValueError(f"unknown chat format '{name}' (use a llama-cpp-python format name such as 'chatml' or 'llama-2')")


def tool_instructions(tools: Sequence[Tool], allow_text: bool) -> str:
    described = "\n".join(
        json.dumps(
            {"name": t.function.name, "description": t.function.description or "", "parameters": t.function.parameters}
        )
        for t in tools
    )
    example = f"{CALL_PREFIX}<function name>{CALL_MIDDLE}<arguments as a JSON object>{CALL_SUFFIX}"
    text = f"You can call these functions:\n{described}\nTo call a function, answer with only a JSON object: {example}."
    if allow_text:
        text += " If no function fits the request, answer in plain text instead."
    return text


def call_text(name: str, arguments: str) -> str:
    """A tool call written as the model is asked to write it."""
    return f"{CALL_PREFIX}{name}{CALL_MIDDLE}{arguments}{CALL_SUFFIX}"


def _plain_messages(messages: Sequence[ChatMessage], system_extra: str | None) -> list[tuple[str, str]]:
    plain: list[tuple[str, str]] = []
    for message in messages:
        role = _ROLES.get(message.role, message.role)
        content = message.text()
        if role == "assistant" and message.tool_calls:
            calls = "\n".join(call_text(c.function.name, c.function.arguments) for c in message.tool_calls)
            content = f"{content}\n{calls}" if content else calls
        plain.append((role, content))
    if system_extra:
        if plain and plain[0][0] == "system":
            plain[0] = ("system", f"{plain[0][1]}\n\n{system_extra}" if plain[0][1] else system_extra)
        else:
            plain.insert(0, ("system", system_extra))
    return plain


def _render(renderer: Renderer, plain: list[tuple[str, str]]) -> tuple[str, bool]:
    messages = [{"role": role, "content": f"\ue000{i}\ue001"} for i, (role, _) in enumerate(plain)]
    try:
        return renderer(messages)
    except (jinja2.TemplateError, ValueError, TypeError, KeyError) as exc:
        raise PromptError(str(exc)[:300]) from exc


def chat_prompt_tokens(
    engine: TextEngine, renderer: Renderer, messages: Sequence[ChatMessage], system_extra: str | None = None
) -> list[int]:
    plain = _plain_messages(messages, system_extra)
    try:
        text, has_bos = _render(renderer, plain)
    except PromptError:
        # Templates written for user/assistant turns only (e.g. llama-2) reject tool results:
        # hand those over as user turns rather than refusing the conversation.
        if not any(role == "tool" for role, _ in plain):
            raise
        plain = [("user", f"Function result: {c}") if r == "tool" else (r, c) for r, c in plain]
        text, has_bos = _render(renderer, plain)
    pieces = _SLOT.split(text)
    seen = {int(i) for i in pieces[1::2]}
    if not seen.issubset(range(len(plain))) or any(c in p for p in pieces[::2] for c in "\ue000\ue001"):
        # The template transformed content (a template may drop messages, e.g. an unused system
        # turn, but must not rewrite them): render it in place instead; special tokens in content
        # are then parsed, as most servers do.
        log.warning("chat template does not pass message content through verbatim; rendering inline")
        full = _SLOT.sub(lambda m: plain[int(m.group(1))][1], text)
        return engine.tokenize(full, add_bos=not has_bos, special=True)
    tokens: list[int] = []
    for index, piece in enumerate(pieces):
        if index % 2 == 0:
            if piece:
                tokens += engine.tokenize(piece, add_bos=not has_bos and not tokens, special=True)
        else:
            content = plain[int(piece)][1]
            if content:
                tokens += engine.tokenize(content, add_bos=False, special=False)
    return tokens
