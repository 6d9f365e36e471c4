"""`/v1/chat/completions` and Nexa's `/v1/function-calling`: the whole conversation through the
model's chat template, with grammar-constrained tool calls and JSON answers."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from nexa_common.errors import APIError, error_responses
from nexa_common.fields import account_fields
from nexa_common.modalities import Capability
from nexa_common.schema_reader import RELAXED_HEADER, relaxed_header
from nexa_common.schemas.text import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatDelta,
    FunctionCall,
    FunctionCallDelta,
    FunctionCallingRequest,
    ToolCall,
    ToolCallDelta,
)

from . import engine as engine_types
from .driver import Generation, Prepared, respond, usage, usage_event
from .engine import GrammarSupport
from .grammars import Grammar, SchemaError, json_object_grammar, json_schema_grammar, tool_call_grammar
from .prompting import tool_instructions
from .runtime import Delta, Outcome
from .serving import (
    Served,
    StateDep,
    TextState,
    chat_logprobs,
    chat_tokens,
    new_id,
    now,
    prepared_off_loop,
    require_supported,
    sampling,
    sequence,
)
from .streaming import EventTemplate, event
from .tool_calls import CallSplitter, ToolPlan, new_call_id, plan_tools

router = APIRouter(tags=["text"])

_RESPONSES = {**error_responses(400, 404, 429, 503, 507), 200: {"content": {"text/event-stream": {}}}}


@dataclass
class _Prepared:
    sequence: engine_types.Sequence
    stops: list[str]
    plan: ToolPlan | None
    legacy_function_call: bool
    """Fill the legacy `function_call` beside `tool_calls` (Nexa's route only; OpenAI sends null)."""
    headers: dict[str, str]
    """Said with the answer: where the schemas were relaxed."""


def _grammar_of(body: ChatCompletionRequest, plan: ToolPlan | None, limit: int) -> tuple[Grammar | None, str | None]:
    """The grammar the answer must match and the system text that asks for it (None, None: free text)."""
    try:
        if plan is not None:
            return tool_call_grammar(plan.tools, plan.allow_text, limit), tool_instructions(plan.tools, plan.allow_text)
        if body.response_format is not None and body.response_format.type == "json_object":
            return json_object_grammar(), "Answer with a JSON object only."
        if body.response_format is not None and body.response_format.json_schema is not None:
            schema = body.response_format.json_schema.schema_
            instructions = f"Answer with a JSON object only, matching this JSON schema: {json.dumps(schema)}"
            return json_schema_grammar(schema, limit), instructions
    except SchemaError as exc:
        param = "tools" if plan is not None else "response_format"
        raise APIError(400, f"Invalid schema: {exc}", param=param, code="invalid_schema") from exc
    return None, None


def _needs_grammar(body: ChatCompletionRequest, plan: ToolPlan | None) -> bool:
    return plan is not None or (body.response_format is not None and body.response_format.type != "text")


def _prepare(model: Served, body: ChatCompletionRequest, must_call: bool) -> _Prepared:
    runtime = model.runtime
    plan = plan_tools(body, must_call=must_call)
    engine = runtime.engine
    if _needs_grammar(body, plan) and not isinstance(engine, GrammarSupport):
        backend = model.model.entry.backend.value.upper() if model.model.entry else "model's"
        raise APIError(
            400,
            f"The {backend} backend does not support grammar-constrained output (tools, function calling, "
            f"response_format json_object/json_schema); serve a GGUF model for those.",
            code="unsupported_by_backend",
        )
    grammar, system_extra = _grammar_of(body, plan, runtime.settings.max_schema_bytes)
    if grammar is not None and isinstance(engine, GrammarSupport) and (problem := engine.grammar_error(grammar.gbnf)):
        raise APIError(
            400, f"Invalid schema: {problem}", param="tools" if plan else "response_format", code="invalid_schema"
        )
    tokens = chat_tokens(runtime, body.messages, system_extra)
    seq = sequence(runtime, tokens, body.token_limit(), "messages")
    seq.sampling = sampling(body)
    if grammar is not None and (body.ignore_eos or body.min_tokens):
        raise APIError(
            400,
            "'ignore_eos' and 'min_tokens' cannot be combined with tools or response_format: the answer must end "
            "where its JSON ends.",
            param="ignore_eos" if body.ignore_eos else "min_tokens",
            code="unsupported_combination",
        )
    seq.min_tokens, seq.ignore_eos = body.min_tokens, body.ignore_eos
    if must_call and "temperature" not in body.model_fields_set:
        # Extracting arguments is a lookup, not creative writing: unless asked otherwise, decode
        # greedily so Nexa's example answers the same every time.
        seq.sampling = replace(seq.sampling, temperature=0.0)
    seq.grammar = grammar.gbnf if grammar is not None else None
    headers = {RELAXED_HEADER: relaxed_header(grammar.relaxed)} if grammar is not None and grammar.relaxed else {}
    if body.logprobs:
        seq.top_logprobs = body.top_logprobs or 0
    require_supported(runtime, seq)
    # A stop sequence inside a tool call would cut its arguments short of valid JSON.
    return _Prepared(seq, [] if plan else body.stop_sequences(), plan, must_call, headers)


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse, responses=_RESPONSES)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, state: StateDep) -> Response:
    """Answer the conversation in `messages` (system, user, assistant and tool turns). With `tools`,
    the model may call one (`tool_choice`: auto, none, required or a named function); the call and
    its arguments are grammar-constrained, so the arguments always parse and match the tool's schema.
    `response_format` json_object / json_schema is enforced the same way."""
    return await _chat(body, request, state, must_call=False, endpoint="chat")


@router.post("/v1/function-calling", response_model=ChatCompletionResponse, responses=_RESPONSES)
async def function_calling(body: FunctionCallingRequest, request: Request, state: StateDep) -> Response:
    """Nexa's function-calling route: call the most appropriate of `tools` for the conversation. Here
    `auto` and `required` both mean the model picks one of the tools and always calls it (use
    /v1/chat/completions to let it answer in text instead); `none` answers in text."""
    return await _chat(body, request, state, must_call=True, endpoint="function_calling")


async def _chat(
    body: ChatCompletionRequest, request: Request, state: TextState, *, must_call: bool, endpoint: str
) -> Response:
    arrived = time.perf_counter()
    account_fields(request, body, strict=state.settings.strict_fields)

    async def prepare(model: Served) -> Prepared:
        prepared = await prepared_off_loop(request, _prepare, model, body, must_call)
        job = Generation(model, prepared.sequence, prepared.stops, arrived, endpoint)
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Prepared(job, _Chat(job, prepared.plan, include_usage, prepared.legacy_function_call), prepared.headers)

    # Tools and JSON schemas are checked in _prepare, which says which backend lacks them.
    return await respond(request, state, body, Capability.CHAT, prepare)


@dataclass
class _Chat:
    """A `chat.completion`, whole or as chunks; with tools, the output is split into text or one call."""

    job: Generation
    plan: ToolPlan | None
    include_usage: bool
    legacy_function_call: bool
    splitter: CallSplitter | None = field(init=False)

    def __post_init__(self) -> None:
        self.id, self.created, self.call_id = new_id("chatcmpl"), now(), new_call_id()
        self.splitter = CallSplitter() if self.plan else None
        self._content = EventTemplate(lambda text: self._chunk(ChatDelta(content=text)))

    def _chunk(self, delta: ChatDelta, finish: str | None = None, logprobs: dict | None = None) -> str:  # type: ignore[type-arg]
        choice = ChatChunkChoice(delta=delta, finish_reason=finish, logprobs=logprobs)  # type: ignore[arg-type]
        return event(ChatCompletionChunk(id=self.id, created=self.created, model=self.job.model_name, choices=[choice]))

    def _split(self, content: str, complete: bool | None = None) -> list[str]:
        if self.splitter is None:
            return [self._content(content)] if content else []
        split = self.splitter.finish(complete) if complete is not None else self.splitter.feed(content)
        out = []
        if split.content:
            out.append(self._content(split.content))
        if split.call_name is not None:
            head = ToolCallDelta(
                index=0,
                id=self.call_id,
                type="function",
                function=FunctionCallDelta(name=split.call_name, arguments=""),
            )
            out.append(self._chunk(ChatDelta(tool_calls=[head])))
        if split.arguments:
            more = ToolCallDelta(index=0, function=FunctionCallDelta(arguments=split.arguments))
            out.append(self._chunk(ChatDelta(tool_calls=[more])))
        return out

    def start(self) -> list[str]:
        return [self._chunk(ChatDelta(role="assistant", content=""))]

    def delta(self, delta: Delta) -> list[str]:
        lines = []
        if self.job.sequence.top_logprobs is not None and delta.token.id >= 0:
            lines.append(self._chunk(ChatDelta(), logprobs=chat_logprobs(self.job.served.runtime, [delta.token])))
        return lines + self._split(delta.text)

    def end(self, outcome: Outcome) -> list[str]:
        lines = self._split("", complete=outcome.finish_reason == "stop")
        finish: str = outcome.finish_reason
        if self.splitter is not None and self.splitter.name is not None and finish == "stop":
            finish = "tool_calls"
        lines.append(self._chunk(ChatDelta(), finish))
        if self.include_usage:
            lines.append(usage_event(ChatCompletionChunk, self.id, self.created, self.job, outcome))
        return lines

    def whole(self, deltas: list[Delta], outcome: Outcome) -> Response:
        content: str | None = "".join(d.text for d in deltas)
        finish: str = outcome.finish_reason
        calls: list[ToolCall] | None = None
        if self.plan is not None:
            splitter = CallSplitter()
            splitter.feed(content or "")
            splitter.finish(complete=outcome.finish_reason == "stop")
            if splitter.mode == "call" and splitter.name is not None:
                call = ToolCall(
                    id=new_call_id(), function=FunctionCall(name=splitter.name, arguments=splitter.arguments)
                )
                calls, content = [call], None
                finish = "tool_calls" if outcome.finish_reason == "stop" else "length"
        message = AssistantMessage(
            content=content,
            tool_calls=calls,
            function_call=calls[0].function if calls and self.legacy_function_call else None,
        )
        logprobs = None
        if self.job.sequence.top_logprobs is not None:
            logprobs = chat_logprobs(self.job.served.runtime, [d.token for d in deltas if d.token.id >= 0])
        response = ChatCompletionResponse(
            id=self.id,
            created=self.created,
            model=self.job.model_name,
            choices=[ChatChoice(message=message, finish_reason=finish, logprobs=logprobs)],  # type: ignore[arg-type]
            usage=usage(outcome),
        )
        return JSONResponse(response.model_dump(exclude_none=False))
