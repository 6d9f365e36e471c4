"""Concurrent embedding requests batched together: 32 clients with one sentence each cost about one
engine call, not 32.

One collector task owns the engine. When inputs are waiting it gathers up to `max_batch` of them,
from every waiting request in arrival order, embeds them in one call on its worker thread and hands
each request its rows. While a call runs, new requests queue up and go together in the next one.
Before a call, the collector waits (at most `wait_s`) for requests already inside the route (being
read, checked, tokenised: `Arrivals`) and, while traffic is concurrent, for a burst's stragglers;
with nothing on its way and no burst going on it does not wait at all, so a lone client pays
nothing for batching. A request larger than a
batch is served a batch-sized slice per call, taking turns with the others, so a 2048-input
request cannot hold a one-sentence one back for its whole length.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nexa_common.errors import APIError

from .arrivals import Arrivals, Ticket

if TYPE_CHECKING:  # the engine needs ONNX Runtime, an optional dependency, at run time only
    from .embedding_engine import EmbeddingEngine

_BATCH_BUCKETS = (1, 2, 4, 8, 16, 24, 32, 48, 64, 128, 256)
_GAP_S = 0.002
"""While traffic is concurrent, a call waits for more arrivals as long as none is further apart than this."""
_STOP_WAIT_S = 5.0
"""Longest wait, at unload, for the event loop to stop the collector."""


class EmbeddingMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.batches = Counter("nexa_text_embedding_batches", "Engine calls made for embeddings", registry=registry)
        self.batch_inputs = Histogram(
            "nexa_text_embedding_batch_inputs", "Inputs embedded per engine call", buckets=_BATCH_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.inputs = Counter("nexa_text_embedding_inputs", "Inputs embedded", registry=registry)
        self.tokens = Counter("nexa_text_embedding_tokens", "Tokens embedded", registry=registry)
        self.waiting = Gauge("nexa_text_embedding_waiting_requests", "Embedding requests queued", registry=registry)


@dataclass
class _Job:
    inputs: list[list[int]]
    future: asyncio.Future[np.ndarray]
    out: np.ndarray
    arrived: float = field(default_factory=time.perf_counter)
    next: int = 0
    """The first input not yet given to the engine."""


class EmbeddingBatcher:
    def __init__(
        self,
        engine: EmbeddingEngine,
        metrics: EmbeddingMetrics,
        *,
        max_batch: int,
        wait_s: float,
        queue_size: int,
        arrivals: Arrivals | None = None,
    ) -> None:
        self.engine = engine
        self._metrics = metrics
        self._max_batch = max_batch
        self._wait_s = wait_s
        self._queue_size = queue_size
        self._jobs: deque[_Job] = deque()
        self._arrived = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="nexa-text-embed")
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        """The event loop the collector runs on (set by the first request)."""
        self._concurrent = False
        """The last call had company or left requests waiting: more are likely to come at once."""
        self._arrivals = arrivals or Arrivals()

    async def embed(self, inputs: list[list[int]], ticket: Ticket | None = None) -> np.ndarray:
        """The unit vectors of `inputs` (token ids with special tokens), one row each. `ticket`: the
        request's place in `Arrivals`, given up once it is queued."""
        if len(self._jobs) >= self._queue_size:
            raise APIError(
                429,
                f"The server is busy: {len(self._jobs)} embedding requests are queued (queue size "
                f"{self._queue_size}). Retry shortly.",
                code="queue_full",
                headers={"Retry-After": "1"},
            )
        loop = asyncio.get_running_loop()
        if self._task is None:
            self._loop = loop
            self._arrivals.listeners.add(self._arrived.set)
            self._task = loop.create_task(self._collect(), name="nexa-text-embedding-batcher")
        job = _Job(inputs, loop.create_future(), np.empty((len(inputs), self.engine.dimensions), np.float32))
        self._jobs.append(job)
        self._metrics.waiting.set(len(self._jobs))
        self._arrived.set()
        if ticket is not None:
            ticket.done()
        # A cancelled wait (the client left) marks the future cancelled: the collector drops the job.
        return await job.future

    def close(self) -> None:
        """Stop the collector, answer the requests still queued (503) and free the engine. Called by
        the pool when it unloads the model, from a worker thread (or from the event loop's own)."""
        loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is loop:
                self._stop()
            else:
                stopped = threading.Event()

                def stop() -> None:
                    try:
                        self._stop()
                    finally:
                        stopped.set()

                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing runs on it
                    loop.call_soon_threadsafe(stop)
                    stopped.wait(_STOP_WAIT_S)
        self._executor.shutdown(wait=True, cancel_futures=True)  # an engine call under way finishes first
        self.engine.close()

    def _stop(self) -> None:
        self._arrivals.listeners.discard(self._arrived.set)
        if self._task is not None:
            self._task.cancel()
        for job in self._jobs:
            if not job.future.done():
                job.future.set_exception(APIError(503, "The embedding model was unloaded.", code="model_unloaded"))
        self._jobs.clear()
        self._metrics.waiting.set(0)

    async def _collect(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._arrived.wait()
            self._arrived.clear()
            self._drop_cancelled()
            if not self._jobs:
                continue
            await self._linger()
            taken = self._take()
            if not taken:
                continue
            batch = [ids for job, start, end in taken for ids in job.inputs[start:end]]
            try:
                vectors = await loop.run_in_executor(self._executor, self.engine.embed, batch)
            except Exception as exc:  # fail the requests of this call, keep serving the others
                for job, _, _ in taken:
                    if not job.future.done():
                        job.future.set_exception(exc)
                        self._forget(job)
            else:
                self._deliver(taken, vectors)
            self._metrics.batches.inc()
            self._metrics.batch_inputs.observe(len(batch))
            self._metrics.inputs.inc(len(batch))
            self._metrics.tokens.inc(sum(len(ids) for ids in batch))
            self._metrics.waiting.set(len(self._jobs))
            self._concurrent = len(taken) > 1 or bool(self._jobs)
            if self._jobs:
                self._arrived.set()

    async def _linger(self) -> None:
        """Before a call, wait up to `wait_s` for company, unless a whole batch is waiting already:
        for requests already inside the route, and, while traffic is concurrent (the last call had
        company or left requests waiting), for more arrivals as long as they keep coming within
        `_GAP_S` of each other. A lone client, with nothing on its way, does not wait at all."""
        deadline = time.perf_counter() + self._wait_s
        while self._pending_inputs() < self._max_batch:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            if self._arrivals.count == 0:
                if not self._concurrent:
                    return
                left = min(left, _GAP_S)
            try:
                await asyncio.wait_for(self._arrived.wait(), left)
            except TimeoutError:
                return
            self._arrived.clear()

    def _pending_inputs(self) -> int:
        return sum(len(job.inputs) - job.next for job in self._jobs)

    def _take(self) -> list[tuple[_Job, int, int]]:
        """Up to `max_batch` inputs, a slice from each waiting request in turn; a request with more
        left goes to the back of the queue."""
        self._drop_cancelled()
        taken: list[tuple[_Job, int, int]] = []
        budget = self._max_batch
        for _ in range(len(self._jobs)):
            if budget == 0:
                break
            job = self._jobs.popleft()
            end = min(len(job.inputs), job.next + budget)
            taken.append((job, job.next, end))
            budget -= end - job.next
            job.next = end
            if job.next < len(job.inputs):
                self._jobs.append(job)
        return taken

    def _deliver(self, taken: list[tuple[_Job, int, int]], vectors: np.ndarray) -> None:
        row = 0
        for job, start, end in taken:
            job.out[start:end] = vectors[row : row + end - start]
            row += end - start
            if end == len(job.inputs) and not job.future.done():
                job.future.set_result(job.out)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._jobs if j.future.done()]:
            self._forget(job)

    def _forget(self, job: _Job) -> None:
        with contextlib.suppress(ValueError):  # already taken off the queue
            self._jobs.remove(job)
