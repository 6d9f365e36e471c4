"""One generation answered, for completions and chat alike: wait for the model's slot, run the
sequence, and answer it whole or as server-sent events. The routes only say how their chunks and
their whole answer look (`Answer`); the slot, the client leaving, the metrics and a failure
mid-stream are handled here, once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AsyncExitStack, aclosing
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from fastapi import Request
from fastapi.responses import Response

from nexa_common.errors import APIError, error_body
from nexa_common.event_stream import EventStream
from nexa_common.kit.cancellation import CLIENT_CLOSED, cancel_on_disconnect, while_connected
from nexa_common.kit.models import Lease
from nexa_common.modalities import Capability
from nexa_common.schemas.keep_alive import kept
from nexa_common.schemas.text import ChatCompletionChunk, CompletionChunk, PromptTokensDetails, SamplingParams, Usage

from . import engine as engine_types
from .arrivals import Ticket, ticket_of
from .runtime import Delta, Outcome, Runtime
from .serving import Served, TextState
from .streaming import DONE, WritePacer, event

log = logging.getLogger("nexa.text.driver")


class Answer(Protocol):
    """How a route's answer looks: its stream chunks, and the whole answer."""

    def start(self) -> list[str]:
        """Events before the first token (chat's role chunk)."""
        ...

    def delta(self, delta: Delta) -> list[str]:
        """Events for new text (none while it is held back)."""
        ...

    def end(self, outcome: Outcome) -> list[str]:
        """Events once generation has ended (the finish reason, usage)."""
        ...

    def whole(self, deltas: list[Delta], outcome: Outcome) -> Response:
        """The non-streamed answer."""
        ...


@dataclass(frozen=True)
class Generation:
    served: Served
    sequence: engine_types.Sequence
    stops: Sequence[str]
    arrived: float
    endpoint: str
    """The `endpoint` label of nexa_text_requests_total."""

    @property
    def model_name(self) -> str:
        """What answers say in `model`."""
        return self.served.model.name


def usage(outcome: Outcome) -> Usage:
    return Usage(
        prompt_tokens=outcome.prompt_tokens,
        completion_tokens=outcome.completion_tokens,
        total_tokens=outcome.prompt_tokens + outcome.completion_tokens,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=outcome.cached_tokens),
    )


def usage_event(chunk: type[CompletionChunk | ChatCompletionChunk], answer_id: str, created: int, job: Generation,
                outcome: Outcome) -> str:  # fmt: skip
    """The last chunk of a stream with `stream_options.include_usage`: no choices, the usage."""
    return event(chunk(id=answer_id, created=created, model=job.model_name, choices=[], usage=usage(outcome)))


class Prepared(NamedTuple):
    job: Generation
    answer: Answer
    headers: dict[str, str]
    """Said with the answer, streamed or whole (e.g. where a schema was relaxed)."""


Prepare = Callable[[Served], Awaitable[Prepared]]
"""Builds the sequence and the answer's shape once the model is loaded (tokenising needs it)."""


async def respond(
    request: Request, state: TextState, params: SamplingParams, capability: Capability, prepare: Prepare
) -> Response:
    """Get the request's model (loading it if needed, while the request waits), prepare the sequence,
    wait in the model's queue (429 at once when it is full), then generate. The model and the slot
    are held until the answer is over, however it ends; a client that leaves while waiting for
    either stops waiting."""
    pool = state.pool
    model = pool.get(params.model, capability)
    arrival = ticket_of(request.scope)
    if arrival is not None and model.state != "loaded":
        arrival.done()  # a load takes seconds: the engines of loaded models do not wait for it
    stack = AsyncExitStack()
    try:
        engine = await while_connected(request, stack.enter_async_context(pool.use(model, kept(params.keep_alive))))
        assert isinstance(engine, Runtime)
        job, answer, headers = await prepare(Served(model, engine))
        lease = await while_connected(request, stack.enter_async_context(pool.slot(model)))
    except BaseException:
        await stack.aclose()
        raise
    return await _answer(request, state, job, answer, stack, lease, stream=params.stream, headers=headers,
                         arrival=arrival)  # fmt: skip


async def _answer(
    request: Request, state: TextState, job: Generation, answer: Answer, stack: AsyncExitStack, lease: Lease,
    *, stream: bool, headers: dict[str, str], arrival: Ticket | None,
) -> Response:  # fmt: skip
    if stream:
        events = _events(request, state, job, answer, lease, arrival)
        return EventStream(events, cleanup=stack.aclose, headers=headers)
    outcome = "error"
    async with stack:
        try:
            deltas, end = await while_connected(request, _collect(job, arrival), job.sequence.cancel)
            outcome = "done"
            whole = answer.whole(deltas, end)
            whole.headers.update(headers)
            return whole
        except APIError as exc:
            outcome = "disconnected" if exc.status == CLIENT_CLOSED else "error"
            raise
        finally:
            state.metrics.requests.labels(job.endpoint, outcome).inc()


async def _collect(job: Generation, arrival: Ticket | None) -> tuple[list[Delta], Outcome]:
    deltas: list[Delta] = []
    outcome: Outcome | None = None
    async with aclosing(job.served.runtime.run(job.sequence, job.stops, job.arrived, arrival)) as events:
        async for item in events:
            if isinstance(item, Delta):
                deltas.append(item)
            else:
                outcome = item
    assert outcome is not None
    return deltas, outcome


async def _events(
    request: Request, state: TextState, job: Generation, answer: Answer, lease: Lease, arrival: Ticket | None
) -> AsyncIterator[str]:
    label = "disconnected"  # until the stream gets to its end
    pacer = WritePacer()
    # Chat's role chunk goes out with the first token's events: one write fewer per answer in the
    # service, the router and the client (the headers have gone out already).
    start = "".join(answer.start())
    try:
        async with cancel_on_disconnect(request, job.sequence.cancel):
            end = ""
            async with aclosing(job.served.runtime.run(job.sequence, job.stops, job.arrived, arrival)) as events:
                async for item in events:
                    if isinstance(item, Delta):
                        if (text := "".join(answer.delta(item))) and start:
                            text, start = start + text, ""
                        if text := pacer.offer(text):
                            yield text
                    else:
                        end = "".join(answer.end(item))
            # The last events go in one write: the finish reason, the usage, [DONE].
            yield start + pacer.flush() + end + DONE
            label = "done"
    except Exception as exc:
        label = "error"
        lease.error = exc  # counted against the engine's health when the slot is given back
        log.exception("generation failed during a stream")
        failure = event(error_body(500, "Generation failed; the server log has the details."))
        yield start + pacer.flush() + failure + DONE
    finally:
        state.metrics.requests.labels(job.endpoint, label).inc()
