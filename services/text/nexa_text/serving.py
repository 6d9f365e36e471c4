"""What the completion and chat routes share before and after generation: the service's state, the
model a request gets, a sequence sized to the context, sampling from a request, and logprobs in
OpenAI's two layouts."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, NamedTuple, TypeVar

from fastapi import Depends, Request

from nexa_common.errors import APIError
from nexa_common.kit.models import PooledModel
from nexa_common.kit.service import ServiceState, get_state
from nexa_common.schemas.text import ChatMessage, CompletionLogprobs, SamplingParams

from .arrivals import Arrivals
from .engine import Sampling, Sequence, Token
from .metrics import TextMetrics
from .prompting import PromptError, chat_prompt_tokens
from .runtime import Runtime
from .settings import Settings


@dataclass
class TextState(ServiceState):
    """What the text app keeps on `app.state.service`."""

    settings: Settings
    metrics: TextMetrics
    embedding_arrivals: Arrivals = field(default_factory=Arrivals)
    """Embedding requests inside the route and not queued yet, whichever model they name: the
    batchers wait briefly for them (see `Arrivals`)."""


StateDep = Annotated[TextState, Depends(get_state)]


INLINE_MAX_BYTES = 16 * 1024
"""A request body up to this size is templated and tokenised on the event loop. A short chat's
template and tokens take ~0.15 ms (SmolLM2; 2 KB of text: 0.5 ms), its whole preparation ~0.5 ms of
the loop's CPU, less than handing it to a worker thread and back, which on 2 busy cores waits for
the interpreter lock: in traces of 8-chat bursts through
the router, time to first token p50 went 76 -> 58, 74 -> 59 and 63 -> 55 ms with it done inline.
Longer ones (20 KB: 3.6 ms, 100 KB: 38 ms) go to a thread, where the tokenizer's C code lets the
loop serve others meanwhile."""

_T = TypeVar("_T")


async def prepared_off_loop(request: Request, work: Callable[..., _T], *args: Any) -> _T:
    """`work(*args)` (templating, tokenising) inline for a small request, else on a worker thread."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) <= INLINE_MAX_BYTES:
        return work(*args)
    return await asyncio.to_thread(work, *args)


class Served(NamedTuple):
    """The model a request is served by, and its loaded runtime."""

    model: PooledModel
    runtime: Runtime


def chat_tokens(runtime: Runtime, messages: list[ChatMessage], system_extra: str | None) -> list[int]:
    """The conversation rendered by the model's chat template, as tokens; a 400 when the template
    refuses it (chat answers with it, /v1/tokenize counts it)."""
    try:
        return chat_prompt_tokens(runtime.engine, runtime.renderer, messages, system_extra)
    except PromptError as exc:
        raise APIError(
            400,
            f"The model's chat template rejected the conversation: {exc}",
            param="messages",
            code="invalid_messages",
        ) from exc


def sequence(runtime: Runtime, prompt_tokens: list[int], requested: int | None, param: str) -> Sequence:
    """A sequence whose prompt fits the context, its length capped by the room left."""
    n_ctx = runtime.engine.n_ctx
    if len(prompt_tokens) >= n_ctx:
        raise APIError(
            400,
            f"The prompt is {len(prompt_tokens)} tokens long, but this model's context holds {n_ctx} tokens "
            f"(prompt and completion together). Shorten the prompt, or start the service with a larger "
            f"NEXA_TEXT_N_CTX.",
            param=param,
            code="context_length_exceeded",
        )
    wanted = requested or runtime.settings.default_max_tokens
    return Sequence(prompt_tokens, min(wanted, n_ctx - len(prompt_tokens)))


def sampling(params: SamplingParams) -> Sampling:
    return Sampling(
        temperature=params.temperature,
        top_p=params.top_p,
        top_k=params.top_k,
        min_p=params.min_p,
        repeat_penalty=params.repeat_penalty,
        presence_penalty=params.presence_penalty,
        frequency_penalty=params.frequency_penalty,
        seed=params.seed,
    )


def require_supported(runtime: Runtime, sequence: Sequence) -> None:
    """400 before queueing for what the engine cannot do (the ONNX engine: min_p, penalties)."""
    problem = runtime.engine.unsupported(sequence)
    if problem is not None:
        raise APIError(400, problem, code="unsupported_by_backend")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


def completion_logprobs(runtime: Runtime, tokens: list[Token], offset: int) -> CompletionLogprobs:
    texts = [runtime.engine.token_text(t.id) for t in tokens]
    offsets, at = [], offset
    for text in texts:
        offsets.append(at)
        at += len(text)
    return CompletionLogprobs(
        tokens=texts,
        token_logprobs=[t.logprob for t in tokens],
        top_logprobs=[{runtime.engine.token_text(i): lp for i, lp in (t.top_logprobs or {}).items()} for t in tokens],
        text_offset=offsets,
    )


def chat_logprobs(runtime: Runtime, tokens: list[Token]) -> dict[str, Any]:
    def entry(token_id: int, logprob: float | None) -> dict[str, Any]:
        text = runtime.engine.token_text(token_id)
        return {"token": text, "logprob": logprob, "bytes": list(text.encode("utf-8"))}

    return {
        "content": [
            {**entry(t.id, t.logprob), "top_logprobs": [entry(i, lp) for i, lp in (t.top_logprobs or {}).items()]}
            for t in tokens
        ]
    }
