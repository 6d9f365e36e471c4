"""Stop a request's work when its client goes away.

Uvicorn does not cancel a handler when the client leaves; it reports it as an `http.disconnect`
message on the request's `receive` channel. Racing that message (rather than polling) lets a
request that is still queued leave the queue at once, and tells running work to stop through a
`threading.Event` that the engine checks between tokens, segments or diffusion steps. The caller
keeps its slot until the work has really stopped, so an engine never runs more jobs than slots.

Only call these once the request body has been read: after it, `receive` yields nothing but the
disconnect (a second listener, such as Starlette's streaming response, gets it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

from starlette.requests import Request

from ..errors import APIError

T = TypeVar("T")

CLIENT_CLOSED = 499
"""nginx's "client closed request": logged as the answer nobody reads."""


def client_gone() -> APIError:
    return APIError(CLIENT_CLOSED, "The client closed the request.", code="client_closed_request")


async def disconnected(request: Request) -> None:
    """Return when the client has gone away."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


async def while_connected(request: Request, work: Awaitable[T], cancel: threading.Event | None = None) -> T:
    """`work`'s result, or APIError 499 once the client has left; then `cancel` is set and the work
    cancelled, and this returns only after it has finished stopping."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        gone.cancel()
        if not task.done():
            if cancel is not None:
                cancel.set()
            task.cancel()
            # Let cancellation finish: the engine must have stopped before the slot is given back.
            await asyncio.gather(task, return_exceptions=True)
    if task.cancelled():
        raise client_gone()
    return task.result()


@contextlib.asynccontextmanager
async def cancel_on_disconnect(request: Request, cancel: threading.Event) -> AsyncIterator[None]:
    """For streamed answers: set `cancel` as soon as the client leaves, while the block runs."""

    async def watch() -> None:
        await disconnected(request)
        cancel.set()

    watcher = asyncio.ensure_future(watch())
    try:
        yield
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)


async def in_thread(fn: Callable[[threading.Event], T], cancel: threading.Event) -> T:
    """Run `fn(cancel)` in a worker thread; if cancelled, set `cancel` and wait until the thread has
    stopped (a thread cannot be interrupted, only asked to stop)."""
    thread = asyncio.ensure_future(asyncio.to_thread(fn, cancel))
    try:
        return await asyncio.shield(thread)
    except asyncio.CancelledError:
        cancel.set()
        await asyncio.gather(thread, return_exceptions=True)
        raise
