"""Which tools a request lets the model call, and its output split into text or a tool call
(incrementally, so tool calls stream as OpenAI streams them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from nexa_common.schemas.text import ChatCompletionRequest, NamedToolChoice, Tool

from .grammars import CALL_MIDDLE, CALL_PREFIX, CALL_SUFFIX


@dataclass(frozen=True)
class ToolPlan:
    tools: list[Tool]
    allow_text: bool


def plan_tools(request: ChatCompletionRequest, *, must_call: bool) -> ToolPlan | None:
    """None when no tool may be called. `must_call`: the seed's /v1/function-calling, whose job is
    to call the most appropriate tool, so there `auto` picks among the tools but always calls one."""
    tools, choice = request.tools or [], request.tool_choice
    if not tools or choice == "none":
        return None
    if isinstance(choice, NamedToolChoice):
        return ToolPlan([t for t in tools if t.function.name == choice.function.name], allow_text=False)
    return ToolPlan(list(tools), allow_text=not must_call and choice != "required")


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


@dataclass
class Split:
    """What new output means: text, the start of a call (its name), or more argument text."""

    content: str = ""
    call_name: str | None = None
    arguments: str = ""


@dataclass
class CallSplitter:
    """Splits `{"tool": "<name>", "parameters": <args>}` as it grows; any other output is text.

    The grammar makes the first character decide (a text answer cannot start with `{`), and the
    last character is held back while generating, since it may be the wrapper's closing brace.
    """

    text: str = ""
    mode: str | None = None
    name: str | None = None
    _args_at: int = 0
    _args_sent: int = field(default=0)

    def feed(self, delta: str) -> Split:
        self.text += delta
        if self.mode is None:
            if not self.text:
                return Split()
            self.mode = "call" if self.text.startswith("{") else "text"
            if self.mode == "text":
                return Split(content=self.text)
        if self.mode == "text":
            return Split(content=delta)
        return self._call_progress(hold=1)

    def finish(self, complete: bool) -> Split:
        """The rest of the arguments once generation ended (`complete`: the grammar was satisfied)."""
        if self.mode != "call":
            return Split()
        if complete and self.text.endswith(CALL_SUFFIX):
            self.text = self.text[: -len(CALL_SUFFIX)]
        return self._call_progress(hold=0)

    def _call_progress(self, hold: int) -> Split:
        split = Split()
        if self.name is None:
            at = self.text.find(CALL_MIDDLE, len(CALL_PREFIX))
            if at < 0:
                return split
            self.name = split.call_name = self.text[len(CALL_PREFIX) : at]
            self._args_at = at + len(CALL_MIDDLE)
        end = len(self.text) - hold
        start = self._args_at + self._args_sent
        if end > start:
            split.arguments = self.text[start:end]
            self._args_sent = end - self._args_at
        return split

    @property
    def arguments(self) -> str:
        return self.text[self._args_at : self._args_at + self._args_sent]
