"""A bounded FIFO queue in front of a model: a few requests run, a few wait, the rest get 429."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .errors import APIError


class AdmissionQueue:
    """Admits at most `concurrency` requests at once and lets at most `queue_size` wait.

    Waiters are served in arrival order (asyncio.Semaphore wakes them FIFO), and a waiter that is
    cancelled (client gone) simply leaves the queue.
    """

    def __init__(self, concurrency: int, queue_size: int, retry_after_s: int = 2) -> None:
        self.concurrency = concurrency
        self.queue_size = queue_size
        self.retry_after_s = retry_after_s
        self._slots = asyncio.Semaphore(concurrency)
        self.waiting = 0
        self.running = 0

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self.waiting >= self.queue_size:
            raise APIError(
                429,
                f"The server is busy: {self.running} running and {self.waiting} queued requests "
                f"(queue size {self.queue_size}). Retry after {self.retry_after_s} s.",
                code="queue_full",
                headers={"Retry-After": str(self.retry_after_s)},
            )
        self.waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()
