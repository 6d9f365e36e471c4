"""`/v1/completions`: continue a prompt (the seed's request and OpenAI's; answered in both shapes)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, aclosing

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from nexa_common.errors import error_body, error_responses
from nexa_common.schemas.text import (
    CompletionChoice,
    CompletionChunk,
    CompletionRequest,
    CompletionResponse,
    Usage,
)

from . import engine as engine_types
from .embedding_model import reject_embedding_model
from .runtime import Delta, Outcome, Runtime, watch_disconnect
from .serving import (
    RuntimeDep,
    admit,
    answer,
    completion_logprobs,
    model_name,
    new_id,
    now,
    require_supported,
    sampling,
)
from .streaming import DONE, EventStream, event

router = APIRouter(tags=["text"])
log = logging.getLogger("nexa.text.completions")


def _prompt_tokens(runtime: Runtime, text: str) -> list[int]:
    # The caller owns the whole prompt here, so special tokens in it are meant as such.
    tokens = runtime.engine.tokenize(text, add_bos=True, special=True)
    if not tokens and runtime.engine.bos_token:
        tokens = runtime.engine.tokenize(runtime.engine.bos_token, add_bos=False, special=True)
    return tokens


@router.post(
    "/v1/completions",
    response_model=CompletionResponse,
    responses={**error_responses(400, 429, 503), 200: {"content": {"text/event-stream": {}}}},
)
async def create_completion(body: CompletionRequest, request: Request, runtime: RuntimeDep) -> Response:
    """Continue `prompt`. Seed clients read `result`; OpenAI clients read `choices`. With
    `stream: true` the answer is server-sent `text_completion` chunks ending with `data: [DONE]`."""
    arrived = time.perf_counter()
    reject_embedding_model(body.model)
    prompt = body.prompt_text()
    tokens = await asyncio.to_thread(_prompt_tokens, runtime, prompt)
    sequence = runtime.sequence(tokens, body.token_limit(), "prompt")
    sequence.sampling = sampling(body)
    sequence.top_logprobs = body.logprobs
    require_supported(runtime, sequence)
    stops = body.stop_sequences()
    echo = prompt if body.echo else ""
    stack = await admit(request, runtime)
    if body.stream:
        events = _stream(request, runtime, sequence, stops, arrived, body, echo)
        return EventStream(events, cleanup=stack.aclose)
    work = _complete(request, runtime, sequence, stops, arrived, echo)
    return await answer(request, runtime, "completions", stack, work)  # type: ignore[no-any-return]


async def _complete(
    request: Request, runtime: Runtime, sequence: engine_types.Sequence, stops: list[str], arrived: float, echo: str
) -> JSONResponse:
    text, generated, outcome = [], [], None
    async with aclosing(runtime.run(sequence, stops, arrived)) as events:
        async for item in events:
            if isinstance(item, Delta):
                text.append(item.text)
                generated.append(item.token)
            else:
                outcome = item
    assert outcome is not None
    completion = echo + "".join(text)
    logprobs = None
    if sequence.top_logprobs is not None:
        logprobs = completion_logprobs(runtime, [t for t in generated if t.id >= 0], len(echo))
    response = CompletionResponse(
        id=new_id("cmpl"),
        created=now(),
        model=model_name(request),
        choices=[CompletionChoice(text=completion, finish_reason=outcome.finish_reason, logprobs=logprobs)],
        usage=_usage(outcome),
        result=completion,
    )
    return JSONResponse(response.model_dump())


def _usage(outcome: Outcome) -> Usage:
    return Usage(
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
    )


async def _stream(
    request: Request,
    runtime: Runtime,
    sequence: engine_types.Sequence,
    stops: list[str],
    arrived: float,
    body: CompletionRequest,
    echo: str,
) -> AsyncIterator[str]:
    chunk_id, created, model = new_id("cmpl"), now(), model_name(request)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)

    def chunk(text: str, finish: str | None = None, logprobs: object = None) -> str:
        choice = CompletionChoice(text=text, finish_reason=finish, logprobs=logprobs)  # type: ignore[arg-type]
        return event(CompletionChunk(id=chunk_id, created=created, model=model, choices=[choice]))

    watcher = asyncio.create_task(watch_disconnect(request, sequence))
    outcome = "disconnected"  # until the stream gets to its end
    try:
        if echo:
            yield chunk(echo)
        offset = len(echo)
        async with AsyncExitStack() as stack:
            events = await stack.enter_async_context(aclosing(runtime.run(sequence, stops, arrived)))
            async for item in events:
                if isinstance(item, Delta):
                    logprobs = None
                    if sequence.top_logprobs is not None and item.token.id >= 0:
                        logprobs = completion_logprobs(runtime, [item.token], offset)
                    if item.text or logprobs:
                        yield chunk(item.text, logprobs=logprobs)
                    offset += len(item.text)
                    continue
                yield chunk("", item.finish_reason)
                if include_usage:
                    usage = _usage(item)
                    yield event(CompletionChunk(id=chunk_id, created=created, model=model, choices=[], usage=usage))
        yield DONE
        outcome = "done"
    except Exception:
        outcome = "error"
        log.exception("generation failed during a stream")
        yield event(error_body(500, "Generation failed; the server log has the details."))
        yield DONE
    finally:
        watcher.cancel()
        runtime.metrics.requests.labels("completions", outcome).inc()
