"""Runs sequences on a loaded model: a worker thread per engine slot, tokens streamed back to the
event loop as text deltas, and a cancel flag that stops the engine within a token. No HTTP here:
the routes (serving.py, driver.py) admit requests and answer them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass
from typing import Literal

from . import engine as engine_types
from .arrivals import Ticket
from .assembler import TextAssembler
from .engine import Delivery, TextEngine, Token
from .metrics import TextMetrics
from .prompting import Renderer
from .settings import Settings


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
    """A loaded text model as the pool holds it: the engine, its chat renderer, and its worker threads."""

    def __init__(self, engine: TextEngine, renderer: Renderer, settings: Settings, metrics: TextMetrics) -> None:
        self.engine = engine
        self.renderer = renderer
        self.settings = settings
        self.metrics = metrics
        # The admission queue lets as many requests run as the engine has slots.
        self.slots = max(1, engine.slots)
        # One worker per sequence the engine runs at once: llama.cpp contexts are not thread-safe,
        # and a new request must never touch a context a running one uses (the batched engine's
        # workers only wait for tokens; its own thread owns the context).
        self._executor = ThreadPoolExecutor(self.slots, thread_name_prefix="nexa-text-engine")

    def failure(self) -> str | None:
        """Why the engine cannot generate any more (for the pool's watch), or None."""
        check = getattr(self.engine, "failure", None)
        return check() if callable(check) else None

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.engine.close()

    async def _tokens(self, sequence: engine_types.Sequence, arrival: Ticket | None) -> AsyncGenerator[Token, None]:
        if arrival is not None:
            arrival.done()  # before the engine sees the sequence: it must not wait for this one
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
        self, sequence: engine_types.Sequence, stops: Sequence[str], arrived: float, arrival: Ticket | None = None
    ) -> AsyncGenerator[Delta | Outcome, None]:
        """Deltas of text as they are generated, then the Outcome. `arrival`: the request's place among
        those on their way to an engine, given up as the sequence is submitted."""
        assembler = TextAssembler(stops)
        count, first_at = 0, 0.0
        try:
            async with aclosing(self._tokens(sequence, arrival)) as tokens:
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
