"""`/v1/chat/completions` and the seed's `/v1/function-calling`: the whole conversation through the
model's chat template, with grammar-constrained tool calls and JSON answers."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator
from contextlib import aclosing
from dataclasses import dataclass, replace

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from nexa_common.errors import APIError, error_body, error_responses
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
    Usage,
)

from . import engine as engine_types
from .embedding_model import reject_embedding_model
from .grammars import SchemaError, json_object_grammar, json_schema_grammar, tool_call_grammar
from .prompting import PromptError, chat_prompt_tokens, tool_instructions
from .runtime import Delta, Outcome, Runtime, watch_disconnect
from .serving import RuntimeDep, admit, answer, chat_logprobs, model_name, new_id, now, require_supported, sampling
from .streaming import DONE, EventStream, event
from .tool_calls import CallSplitter, ToolPlan, new_call_id, plan_tools

router = APIRouter(tags=["text"])
log = logging.getLogger("nexa.text.chat")

_RESPONSES = {**error_responses(400, 429, 503), 200: {"content": {"text/event-stream": {}}}}


@dataclass
class _Prepared:
    sequence: engine_types.Sequence
    stops: list[str]
    plan: ToolPlan | None


def _prepare(runtime: Runtime, body: ChatCompletionRequest, must_call: bool) -> _Prepared:
    plan = plan_tools(body, must_call=must_call)
    limit = runtime.settings.max_schema_bytes
    grammar: str | None = None
    system_extra: str | None = None
    try:
        if plan is not None:
            grammar = tool_call_grammar(plan.tools, plan.allow_text, limit)
            system_extra = tool_instructions(plan.tools, plan.allow_text)
        elif body.response_format is not None and body.response_format.type == "json_object":
            grammar, system_extra = json_object_grammar(), "Answer with a JSON object only."
        elif body.response_format is not None and body.response_format.json_schema is not None:
            schema = body.response_format.json_schema.schema_
            grammar = json_schema_grammar(schema, limit)
            system_extra = f"Answer with a JSON object only, matching this JSON schema: {json.dumps(schema)}"
    except SchemaError as exc:
        param = "tools" if plan is not None else "response_format"
        raise APIError(400, f"Invalid schema: {exc}", param=param, code="invalid_schema") from exc
    if grammar is not None and (problem := runtime.engine.grammar_error(grammar)) is not None:
        raise APIError(
            400, f"Invalid schema: {problem}", param="tools" if plan else "response_format", code="invalid_schema"
        )
    try:
        tokens = chat_prompt_tokens(runtime.engine, runtime.renderer, body.messages, system_extra)
    except PromptError as exc:
        raise APIError(
            400,
            f"The model's chat template rejected the conversation: {exc}",
            param="messages",
            code="invalid_messages",
        ) from exc
    sequence = runtime.sequence(tokens, body.token_limit(), "messages")
    sequence.sampling = sampling(body)
    if must_call and "temperature" not in body.model_fields_set:
        # Extracting arguments is a lookup, not creative writing: unless asked otherwise, decode
        # greedily so the seed's example answers the same every time.
        sequence.sampling = replace(sequence.sampling, temperature=0.0)
    sequence.grammar = grammar
    if body.logprobs:
        sequence.top_logprobs = body.top_logprobs or 0
    require_supported(runtime, sequence)
    # A stop sequence inside a tool call would cut its arguments short of valid JSON.
    return _Prepared(sequence, [] if plan else body.stop_sequences(), plan)


@router.post("/v1/chat/completions", response_model=ChatCompletionResponse, responses=_RESPONSES)
async def create_chat_completion(body: ChatCompletionRequest, request: Request, runtime: RuntimeDep) -> Response:
    """Answer the conversation in `messages` (system, user, assistant and tool turns). With `tools`,
    the model may call one (`tool_choice`: auto, none, required or a named function); the call and
    its arguments are grammar-constrained, so the arguments always parse and match the tool's schema.
    `response_format` json_object / json_schema is enforced the same way."""
    return await _chat(body, request, runtime, must_call=False, endpoint="chat")


@router.post("/v1/function-calling", response_model=ChatCompletionResponse, responses=_RESPONSES)
async def function_calling(body: FunctionCallingRequest, request: Request, runtime: RuntimeDep) -> Response:
    """The seed's endpoint: call the most appropriate of `tools` for the conversation. Here `auto`
    and `required` both mean the model picks one of the tools and always calls it (use
    /v1/chat/completions to let it answer in text instead); `none` answers in text."""
    return await _chat(body, request, runtime, must_call=True, endpoint="function_calling")


async def _chat(
    body: ChatCompletionRequest, request: Request, runtime: Runtime, *, must_call: bool, endpoint: str
) -> Response:
    arrived = time.perf_counter()
    reject_embedding_model(body.model)
    prepared = await asyncio.to_thread(_prepare, runtime, body, must_call)
    stack = await admit(request, runtime)
    if body.stream:
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        events = _stream(request, runtime, prepared, arrived, include_usage, endpoint)
        return EventStream(events, cleanup=stack.aclose)
    return await answer(request, runtime, endpoint, stack, _complete(request, runtime, prepared, arrived))  # type: ignore[no-any-return]


def _usage(outcome: Outcome) -> Usage:
    return Usage(
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
    )


async def _complete(request: Request, runtime: Runtime, prepared: _Prepared, arrived: float) -> JSONResponse:
    splitter = CallSplitter() if prepared.plan else None
    text: list[str] = []
    tokens: list[engine_types.Token] = []
    outcome: Outcome | None = None
    async with aclosing(runtime.run(prepared.sequence, prepared.stops, arrived)) as events:
        async for item in events:
            if isinstance(item, Delta):
                text.append(item.text)
                if item.token.id >= 0:
                    tokens.append(item.token)
            else:
                outcome = item
    assert outcome is not None
    content: str | None = "".join(text)
    finish: str = outcome.finish_reason
    calls: list[ToolCall] | None = None
    if splitter is not None:
        splitter.feed(content or "")
        splitter.finish(complete=outcome.finish_reason == "stop")
        if splitter.mode == "call" and splitter.name is not None:
            call = ToolCall(id=new_call_id(), function=FunctionCall(name=splitter.name, arguments=splitter.arguments))
            calls, content = [call], None
            finish = "tool_calls" if outcome.finish_reason == "stop" else "length"
    message = AssistantMessage(
        content=content,
        tool_calls=calls,
        function_call=calls[0].function if calls else None,
    )
    logprobs = chat_logprobs(runtime, tokens) if prepared.sequence.top_logprobs is not None else None
    response = ChatCompletionResponse(
        id=new_id("chatcmpl"),
        created=now(),
        model=model_name(request),
        choices=[ChatChoice(message=message, finish_reason=finish, logprobs=logprobs)],  # type: ignore[arg-type]
        usage=_usage(outcome),
    )
    return JSONResponse(response.model_dump(exclude_none=False))


async def _stream(
    request: Request, runtime: Runtime, prepared: _Prepared, arrived: float, include_usage: bool, endpoint: str
) -> AsyncIterator[str]:
    chunk_id, created, model = new_id("chatcmpl"), now(), model_name(request)
    splitter = CallSplitter() if prepared.plan else None
    call_id = new_call_id()
    want_logprobs = prepared.sequence.top_logprobs is not None

    def chunk(delta: ChatDelta, finish: str | None = None, logprobs: dict | None = None) -> str:  # type: ignore[type-arg]
        choice = ChatChunkChoice(delta=delta, finish_reason=finish, logprobs=logprobs)  # type: ignore[arg-type]
        return event(ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[choice]))

    def split_chunks(content: str, complete: bool | None = None) -> list[str]:
        if splitter is None:
            return [chunk(ChatDelta(content=content))] if content else []
        split = splitter.finish(complete) if complete is not None else splitter.feed(content)
        out = []
        if split.content:
            out.append(chunk(ChatDelta(content=split.content)))
        if split.call_name is not None:
            head = ToolCallDelta(
                index=0, id=call_id, type="function", function=FunctionCallDelta(name=split.call_name, arguments="")
            )
            out.append(chunk(ChatDelta(tool_calls=[head])))
        if split.arguments:
            more = ToolCallDelta(index=0, function=FunctionCallDelta(arguments=split.arguments))
            out.append(chunk(ChatDelta(tool_calls=[more])))
        return out

    watcher = asyncio.create_task(watch_disconnect(request, prepared.sequence))
    outcome_label = "disconnected"  # until the stream gets to its end
    try:
        yield chunk(ChatDelta(role="assistant", content=""))
        async with aclosing(runtime.run(prepared.sequence, prepared.stops, arrived)) as events:
            async for item in events:
                if isinstance(item, Delta):
                    if want_logprobs and item.token.id >= 0:
                        yield chunk(ChatDelta(), logprobs=chat_logprobs(runtime, [item.token]))
                    for line in split_chunks(item.text):
                        yield line
                    continue
                for line in split_chunks("", complete=item.finish_reason == "stop"):
                    yield line
                finish: str = item.finish_reason
                if splitter is not None and splitter.name is not None and finish == "stop":
                    finish = "tool_calls"
                yield chunk(ChatDelta(), finish)
                if include_usage:
                    yield event(
                        ChatCompletionChunk(id=chunk_id, created=created, model=model, choices=[], usage=_usage(item))
                    )
        yield DONE
        outcome_label = "done"
    except Exception:
        outcome_label = "error"
        log.exception("generation failed during a stream")
        yield event(error_body(500, "Generation failed; the server log has the details."))
        yield DONE
    finally:
        watcher.cancel()
        runtime.metrics.requests.labels(endpoint, outcome_label).inc()
