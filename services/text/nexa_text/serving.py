"""What the completion and chat routes share: the loaded runtime, sampling from a request, the
queue slot (held until the response is over), and logprobs in OpenAI's two layouts."""

from __future__ import annotations

import time
import uuid
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from nexa_common.errors import APIError
from nexa_common.schemas.text import CompletionLogprobs, SamplingParams
from nexa_common.service import ModelStatus

from .embedding_model import EmbeddingModel
from .engine import Sampling, Sequence, Token
from .runtime import Runtime, until_disconnected


@dataclass
class TextState:
    """What the app keeps on `app.state.text`."""

    status: ModelStatus
    embeddings: EmbeddingModel
    runtime: Runtime | None = None


def _runtime(request: Request) -> Runtime:
    state: TextState = request.app.state.text
    state.status.require_ready()
    if state.runtime is None:  # ready implies loaded; kept for type narrowing
        raise APIError(503, "The model is not loaded.", code="model_loading")
    return state.runtime


RuntimeDep = Annotated[Runtime, Depends(_runtime)]


def model_name(request: Request) -> str:
    state: TextState = request.app.state.text
    return state.status.entry.name


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
    """400 before queueing for what the engine cannot do (the ONNX engine: grammars)."""
    problem = runtime.engine.unsupported(sequence)
    if problem is not None:
        raise APIError(400, problem, code="unsupported_by_backend")


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


def now() -> int:
    return int(time.time())


async def admit(request: Request, runtime: Runtime) -> AsyncExitStack:
    """Wait for a slot (429 at once when the queue is full); the caller closes the stack to free it.
    A client that leaves while waiting leaves the queue."""
    stack = AsyncExitStack()
    await until_disconnected(request, stack.enter_async_context(runtime.admission.slot()))
    return stack


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


async def answer(request: Request, runtime: Runtime, endpoint: str, stack: AsyncExitStack, work: Any) -> Any:
    """Await a non-streamed answer in its queue slot, counting how it ended."""
    outcome = "error"
    async with stack:
        try:
            result = await until_disconnected(request, work)
            outcome = "done"
            return result
        except APIError as exc:
            outcome = "disconnected" if exc.status == 499 else "error"
            raise
        finally:
            runtime.metrics.requests.labels(endpoint, outcome).inc()
