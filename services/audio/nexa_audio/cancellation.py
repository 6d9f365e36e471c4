"""Run a request's job only while its client is still connected.

Uvicorn does not cancel a handler when the client goes away; it reports it as an
`http.disconnect` message. Watching for that message lets a request that left the queue early
free its place, and tells a running transcription to stop after its current segment.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    while True:
        message = await request.receive()  # after the body, this waits until the client leaves
        if message["type"] == "http.disconnect":
            return


async def while_connected(request: Request, job: Callable[[threading.Event], Awaitable[T]]) -> T | None:
    """The job's result, or None when the client disconnected first (the job is then stopped)."""
    cancel = threading.Event()
    work = asyncio.ensure_future(job(cancel))
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({work, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not work.done():
            cancel.set()
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
    return None if work.cancelled() else work.result()


async def in_thread(fn: Callable[[threading.Event], T], cancel: threading.Event) -> T:
    """Run `fn(cancel)` in a worker thread; if cancelled, wait until the thread has stopped.

    A thread cannot be interrupted, so the caller (holding the model's admission slot) keeps the
    slot until `fn` notices the event and returns: the model never runs more jobs than slots.
    """
    thread = asyncio.ensure_future(asyncio.to_thread(fn, cancel))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.gather(thread, return_exceptions=True)
        raise
