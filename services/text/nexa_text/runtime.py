"""Runs sequences on the engine: a bounded FIFO in front, a worker thread behind, tokens streamed
back to the event loop, and a cancel flag that stops the engine when a client leaves."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal, TypeVar

from prometheus_client import CollectorRegistry
from starlette.requests import Request

from nexa_common.admission import AdmissionQueue
from nexa_common.errors import APIError

from . import engine as engine_types
from .assembler import TextAssembler
from .engine import Delivery, TextEngine, Token
from .metrics import TextMetrics
from .prompting import Renderer
from .settings import Settings

T = TypeVar("T")
_DISCONNECT_POLL_S = 0.1


@dataclass(frozen=True)
class Delta:
    text: str
    """New text; empty while bytes are held back (part of a character, a possible stop sequence)."""
    token: Token


@dataclass(frozen=True)
class Outcome:
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0
    """Prompt tokens whose KV cache was reused rather than evaluated."""


class _End:
    pass


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class Runtime:
    def __init__(self, engine: TextEngine, renderer: Renderer, settings: Settings, registry: CollectorRegistry) -> None:
        self.engine = engine
        self.renderer = renderer
        self.settings = settings
        # An engine that batches sequences says how many it takes at once (`slots`); any other runs
        # one at a time, whatever the settings ask.
        concurrency = max(1, int(getattr(engine, "slots", 1)))
        self.admission = AdmissionQueue(concurrency, settings.queue_size, settings.retry_after_s)
        self.metrics = TextMetrics(registry, self.admission, engine)
        # One worker per sequence the engine runs at once: llama.cpp contexts are not thread-safe,
        # and a new request must never touch a context a running one uses (the batched engine's
        # workers only wait for tokens; its own thread owns the context).
        self._executor = ThreadPoolExecutor(concurrency, thread_name_prefix="nexa-text-engine")

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.engine.close()

    def sequence(self, prompt_tokens: list[int], requested: int | None, param: str) -> engine_types.Sequence:
        """A sequence whose prompt fits the context, its length capped by the room left."""
        n_ctx = self.engine.n_ctx
        if len(prompt_tokens) >= n_ctx:
            raise APIError(
                400,
                f"The prompt is {len(prompt_tokens)} tokens long, but this model's context holds {n_ctx} tokens "
                f"(prompt and completion together). Shorten the prompt, or start the service with a larger "
                f"NEXA_TEXT_N_CTX.",
                param=param,
                code="context_length_exceeded",
            )
        wanted = requested or self.settings.default_max_tokens
        return engine_types.Sequence(prompt_tokens, min(wanted, n_ctx - len(prompt_tokens)))

    async def _tokens(self, sequence: engine_types.Sequence) -> AsyncGenerator[Token, None]:
        submit = getattr(self.engine, "submit", None)
        source = self._submitted(submit, sequence) if submit else self._threaded(sequence)
        async with aclosing(source) as tokens:
            async for token in tokens:
                yield token

    async def _submitted(
        self, submit: Callable[[engine_types.Sequence, Delivery], None], sequence: engine_types.Sequence
    ) -> AsyncGenerator[Token, None]:
        """An engine with its own scheduler thread: its tokens come straight to the event loop,
        a step's worth per wake-up, with no worker thread in between."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[list[Token | BaseException | None]] = asyncio.Queue()

        def deliver(items: list[Token | BaseException | None]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, items)
            except RuntimeError:  # the loop is gone (shutdown): nobody is listening any more
                sequence.cancel.set()

        submit(sequence, deliver)
        ended = False
        try:
            while not ended:
                for item in await queue.get():
                    if item is None:
                        ended = True
                        break
                    if isinstance(item, BaseException):
                        ended = True
                        raise item
                    yield item
        finally:
            sequence.cancel.set()
            # The engine stops the sequence at its next step and says so; the queue slot is given
            # back only then, so the engine never holds more sequences than it has slots.
            while not ended:
                items = await asyncio.shield(queue.get())
                ended = any(item is None or isinstance(item, BaseException) for item in items)

    async def _threaded(self, sequence: engine_types.Sequence) -> AsyncGenerator[Token, None]:
        """An engine whose `generate` blocks: run it on a worker thread, tokens to the loop."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Token | _End | _Failed] = asyncio.Queue()

        def put(item: Token | _End | _Failed) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (shutdown): nobody is listening any more
                sequence.cancel.set()

        def work() -> None:
            try:
                for token in self.engine.generate(sequence):
                    put(token)
            except BaseException as exc:
                put(_Failed(exc))
            finally:
                put(_End())

        future = loop.run_in_executor(self._executor, work)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _End):
                    return
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            sequence.cancel.set()
            # The engine checks the flag before each token; the slot is given back only once it
            # has actually stopped, so the next sequence starts on an idle engine.
            await asyncio.shield(future)

    async def run(
        self, sequence: engine_types.Sequence, stops: Sequence[str], arrived: float
    ) -> AsyncGenerator[Delta | Outcome, None]:
        """Deltas of text as they are generated, then the Outcome."""
        assembler = TextAssembler(stops)
        count, first_at = 0, 0.0
        try:
            async with aclosing(self._tokens(sequence)) as tokens:
                async for token in tokens:
                    count += 1
                    if count == 1:
                        first_at = time.perf_counter()
                        self.metrics.time_to_first_token.observe(first_at - arrived)
                    yield Delta(assembler.feed(token.piece), token)
                    if assembler.stopped:
                        break
            if not assembler.stopped:
                rest = assembler.finish()
                if rest:
                    yield Delta(rest, Token(-1, b""))
        finally:
            # Counted however the sequence ended, abandoned ones included: they used the engine too.
            elapsed = time.perf_counter() - first_at
            if count > 1 and elapsed > 0:
                self.metrics.tokens_per_second.observe((count - 1) / elapsed)
            self.metrics.tokens_generated.inc(count)
            self.metrics.prompt_tokens.inc(len(sequence.prompt_tokens))
            self.metrics.cached_prompt_tokens.inc(sequence.cached_tokens)
        finished_early = assembler.stopped or count < sequence.max_tokens
        yield Outcome(
            "stop" if finished_early else "length", len(sequence.prompt_tokens), count, sequence.cached_tokens
        )


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client goes away (uvicorn does not cancel handlers)."""
    task = asyncio.ensure_future(work)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=_DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                task.cancel()
                raise APIError(499, "The client closed the request.", code="client_closed_request")
    finally:
        if not task.done():
            task.cancel()
        # Let cancellation finish (a cancelled generation waits for the engine to stop).
        await asyncio.gather(task, return_exceptions=True)


async def watch_disconnect(request: Request, sequence: engine_types.Sequence) -> None:
    """Set the sequence's cancel flag when the client goes away (for streams)."""
    while not sequence.cancel.is_set():
        if await request.is_disconnected():
            sequence.cancel.set()
            return
        await asyncio.sleep(_DISCONNECT_POLL_S)
