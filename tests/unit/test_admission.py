"""AdmissionQueue: a few run, a few wait in arrival order, the rest get 429; a waiter that leaves frees its place."""

from __future__ import annotations

import asyncio

import pytest

from nexa_common.admission import AdmissionQueue
from nexa_common.errors import APIError


async def test_waiters_are_served_in_arrival_order() -> None:
    queue = AdmissionQueue(concurrency=1, queue_size=8)
    order: list[int] = []
    gate = asyncio.Event()

    async def job(n: int) -> None:
        async with queue.slot():
            order.append(n)
            await gate.wait()

    tasks = [asyncio.create_task(job(n)) for n in range(5)]
    for _ in range(100):
        if queue.waiting == 4:
            break
        await asyncio.sleep(0.01)
    assert (queue.running, queue.waiting) == (1, 4)
    gate.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == [0, 1, 2, 3, 4]
    assert (queue.running, queue.waiting) == (0, 0)


async def test_beyond_the_queue_the_answer_is_429_with_retry_after() -> None:
    queue = AdmissionQueue(concurrency=1, queue_size=1, retry_after_s=7)
    gate = asyncio.Event()

    async def hold() -> None:
        async with queue.slot():
            await gate.wait()

    running, waiting = asyncio.create_task(hold()), asyncio.create_task(hold())
    await asyncio.sleep(0.05)
    with pytest.raises(APIError) as refused:
        async with queue.slot():
            pass
    assert refused.value.status == 429 and refused.value.code == "queue_full"
    assert refused.value.headers["Retry-After"] == "7"
    assert "1 running and 1 queued" in refused.value.message
    gate.set()
    await asyncio.gather(running, waiting)


async def test_a_cancelled_waiter_leaves_the_queue_and_the_next_one_gets_the_slot() -> None:
    queue = AdmissionQueue(concurrency=1, queue_size=4)
    gate = asyncio.Event()
    served: list[str] = []

    async def job(name: str) -> None:
        async with queue.slot():
            served.append(name)
            await gate.wait()

    first = asyncio.create_task(job("first"))
    leaving = asyncio.create_task(job("leaving"))
    last = asyncio.create_task(job("last"))
    await asyncio.sleep(0.05)
    assert queue.waiting == 2
    leaving.cancel()  # its client went away while it waited
    await asyncio.gather(leaving, return_exceptions=True)
    assert queue.waiting == 1
    gate.set()
    await asyncio.wait_for(asyncio.gather(first, last), 5)
    assert served == ["first", "last"]


async def test_zero_queue_size_admits_only_what_runs() -> None:
    queue = AdmissionQueue(concurrency=2, queue_size=0)
    async with queue.slot(), queue.slot():
        assert queue.running == 2
        with pytest.raises(APIError):
            async with queue.slot():
                pass
    assert queue.running == 0
