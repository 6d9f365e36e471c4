"""`/v1/completions`: continue a prompt (Nexa's request and OpenAI's; answered in both shapes)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from nexa_common.errors import error_responses
from nexa_common.fields import account_fields
from nexa_common.modalities import Capability
from nexa_common.schemas.text import CompletionChoice, CompletionChunk, CompletionRequest, CompletionResponse

from .driver import Generation, Prepared, respond, usage, usage_event
from .runtime import Delta, Outcome, Runtime
from .serving import (
    Served,
    StateDep,
    completion_logprobs,
    new_id,
    now,
    prepared_off_loop,
    require_supported,
    sampling,
    sequence,
)
from .streaming import EventTemplate, event

router = APIRouter(tags=["text"])


def _prompt_tokens(runtime: Runtime, text: str) -> list[int]:
    # The caller owns the whole prompt here, so special tokens in it are meant as such.
    tokens = runtime.engine.tokenize(text, add_bos=True, special=True)
    if not tokens and runtime.engine.bos_token:
        tokens = runtime.engine.tokenize(runtime.engine.bos_token, add_bos=False, special=True)
    return tokens


@router.post(
    "/v1/completions",
    response_model=CompletionResponse,
    responses={**error_responses(400, 404, 429, 503, 507), 200: {"content": {"text/event-stream": {}}}},
)
async def create_completion(body: CompletionRequest, request: Request, state: StateDep) -> Response:
    """Continue `prompt`. Nexa's clients read `result`; OpenAI clients read `choices`. With
    `stream: true` the answer is server-sent `text_completion` chunks ending with `data: [DONE]`."""
    arrived = time.perf_counter()
    account_fields(request, body, strict=state.settings.strict_fields)
    prompt = body.prompt_text()

    async def prepare(model: Served) -> Prepared:
        tokens = await prepared_off_loop(request, _prompt_tokens, model.runtime, prompt)
        seq = sequence(model.runtime, tokens, body.token_limit(), "prompt")
        seq.sampling = sampling(body)
        seq.min_tokens, seq.ignore_eos = body.min_tokens, body.ignore_eos
        seq.top_logprobs = body.logprobs
        require_supported(model.runtime, seq)
        job = Generation(model, seq, body.stop_sequences(), arrived, "completions")
        include_usage = bool(body.stream_options and body.stream_options.include_usage)
        return Prepared(job, _Completion(job, prompt if body.echo else "", include_usage), {})

    return await respond(request, state, body, Capability.COMPLETIONS, prepare)


@dataclass
class _Completion:
    """A `text_completion`: whole, or as chunks (the echoed prompt first, when asked for)."""

    job: Generation
    echo: str
    include_usage: bool

    def __post_init__(self) -> None:
        self.id, self.created = new_id("cmpl"), now()
        self.offset = len(self.echo)  # text_offset of the next token
        self._text = EventTemplate(self._chunk)

    def _chunk(self, text: str, finish: str | None = None, logprobs: object = None) -> str:
        choice = CompletionChoice(text=text, finish_reason=finish, logprobs=logprobs)  # type: ignore[arg-type]
        return event(CompletionChunk(id=self.id, created=self.created, model=self.job.model_name, choices=[choice]))

    def start(self) -> list[str]:
        return [self._chunk(self.echo)] if self.echo else []

    def delta(self, delta: Delta) -> list[str]:
        logprobs = None
        if self.job.sequence.top_logprobs is not None and delta.token.id >= 0:
            logprobs = completion_logprobs(self.job.served.runtime, [delta.token], self.offset)
        self.offset += len(delta.text)
        if logprobs is not None:
            return [self._chunk(delta.text, logprobs=logprobs)]
        return [self._text(delta.text)] if delta.text else []

    def end(self, outcome: Outcome) -> list[str]:
        lines = [self._chunk("", outcome.finish_reason)]
        if self.include_usage:
            lines.append(usage_event(CompletionChunk, self.id, self.created, self.job, outcome))
        return lines

    def whole(self, deltas: list[Delta], outcome: Outcome) -> Response:
        completion = self.echo + "".join(d.text for d in deltas)
        logprobs = None
        if self.job.sequence.top_logprobs is not None:
            tokens = [d.token for d in deltas if d.token.id >= 0]
            logprobs = completion_logprobs(self.job.served.runtime, tokens, len(self.echo))
        response = CompletionResponse(
            id=self.id,
            created=self.created,
            model=self.job.model_name,
            choices=[CompletionChoice(text=completion, finish_reason=outcome.finish_reason, logprobs=logprobs)],
            usage=usage(outcome),
            result=completion,
        )
        return JSONResponse(response.model_dump())
