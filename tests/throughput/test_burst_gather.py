"""An idle batched engine given a sequence while more requests are on their way (in the service's
route, not submitted yet) waits for them, so that a burst's prompts share one step; a request that
fails on its way does not keep it waiting. In-process, with the real SmolLM2: the count of requests
on their way is the test's, so nothing depends on how fast the machine parses them."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from throughput_helpers import COUNTING, read_metric

from nexa_common import catalogue
from nexa_text.batched_engine import BatchedEngine
from nexa_text.engine import Sampling, Sequence

HANG_GUARD_S = 60.0  # a bound on waiting for an answer, not a timing being tested


class Coming:
    """The test's own count of requests on their way to the engine."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> int:
        return self.count


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return catalogue.resolve("smollm2", tmp_path_factory.mktemp("cache")).path


@pytest.fixture
def coming() -> Coming:
    return Coming()


def _engine(gguf: Path, coming: Coming, slots: int) -> BatchedEngine:
    # A long gather bound: the engine may only stop waiting because the requests arrived or failed.
    return BatchedEngine(
        gguf, n_ctx=512, n_threads=1, n_batch=128, n_gpu_layers=0, slots=slots, coming=coming, gather_max_s=HANG_GUARD_S
    )


@pytest.fixture
def engine(gguf: Path, coming: Coming) -> Iterator[BatchedEngine]:
    engine = _engine(gguf, coming, slots=2)
    yield engine
    engine.close()


class _Request:
    """One greedy token for a prompt (tokenised up front); `ended` is set once the sequence has ended."""

    def __init__(self, engine: BatchedEngine, prompt: str) -> None:
        self.engine = engine
        self.sequence = Sequence(engine.tokenize(prompt, add_bos=True, special=True), 1, Sampling(temperature=0))
        self.ended = threading.Event()

    def deliver(self, items: list[object]) -> None:
        if any(item is None or isinstance(item, BaseException) for item in items):
            self.ended.set()

    def submit(self, coming: Coming | None) -> threading.Event:
        """Given up as on its way just before it is submitted, as the service does."""
        if coming is not None:
            coming.count -= 1
        self.engine.submit(self.sequence, self.deliver)  # type: ignore[arg-type]
        return self.ended


def _submit(engine: BatchedEngine, prompt: str, coming: Coming | None = None) -> threading.Event:
    return _Request(engine, prompt).submit(coming)


def test_a_burst_arriving_at_an_idle_engine_is_evaluated_in_one_step(engine: BatchedEngine, coming: Coming) -> None:
    coming.count = 2
    first = _submit(engine, COUNTING, coming)
    # The second is still being parsed: long enough for an engine that did not wait to have run the
    # first one's step alone.
    time.sleep(0.3)
    assert not first.is_set(), "the engine started while a request was still on its way"
    second = _submit(engine, f"{COUNTING} 9", coming)
    assert first.wait(HANG_GUARD_S) and second.wait(HANG_GUARD_S)
    assert engine.steps == 1  # both prompts (and their one token each) in one llama_decode


def test_requests_queued_together_as_the_count_ends_all_join_the_first_step(gguf: Path, coming: Coming) -> None:
    # The last two of a burst are queued one right after the other, so the count of those on their
    # way is 0 before the engine's thread has looked at its queue again: it must still take both
    # (found in a trace of 8-stream bursts, where the first step often had 2 to 5 of the 8).
    engine = _engine(gguf, coming, slots=3)
    try:
        coming.count = 3
        first = _submit(engine, COUNTING, coming)
        time.sleep(0.3)  # the engine is gathering
        last_two = [_Request(engine, f"{COUNTING} {n}") for n in (9, 10)]
        interval = sys.getswitchinterval()
        # This thread keeps the interpreter until it waits (tokenising would have let it go): both
        # are queued, and the count is 0, before the engine's thread runs again.
        sys.setswitchinterval(10.0)
        try:
            second, third = (request.submit(coming) for request in last_two)
        finally:
            sys.setswitchinterval(interval)
        assert first.wait(HANG_GUARD_S) and second.wait(HANG_GUARD_S) and third.wait(HANG_GUARD_S)
        assert engine.steps == 1  # all three prompts in one llama_decode
    finally:
        engine.close()


def test_a_request_that_fails_on_its_way_does_not_hold_the_engine(engine: BatchedEngine, coming: Coming) -> None:
    coming.count = 2
    first = _submit(engine, COUNTING, coming)
    time.sleep(0.3)
    coming.count -= 1  # the other one was turned away (a 400, say): nothing more is coming
    assert first.wait(HANG_GUARD_S), "the engine kept waiting for a request that had failed"
    assert engine.steps == 1


def test_a_lone_request_is_started_at_once(engine: BatchedEngine) -> None:
    # Nothing on its way: no wait at all (with the long gather bound, any wait would show as a hang).
    assert _submit(engine, COUNTING).wait(HANG_GUARD_S)
    assert engine.steps == 1


async def test_a_request_stops_counting_as_on_its_way_once_submitted(text_url: str) -> None:
    async with httpx.AsyncClient(base_url=text_url, timeout=120) as client:
        steps = await read_metric(client, "nexa_text_decode_steps_total")
        body = {"prompt": COUNTING, "temperature": 0, "max_tokens": 5}
        response = await client.post("/v1/completions", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] == 5
        # One step evaluates the prompt and samples the first token; one more for each other token.
        assert await read_metric(client, "nexa_text_decode_steps_total") - steps == 5

        # While a stream is still open, its request no longer counts: an idle engine must never
        # wait for a request it is already decoding.
        body = {"prompt": COUNTING, "temperature": 0, "max_tokens": 200, "stream": True}
        async with client.stream("POST", "/v1/completions", json=body) as stream:
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            async for line in lines:
                if line.startswith("data: {"):
                    break
            assert await read_metric(client, "nexa_text_arriving_requests") == 0
            async for _ in lines:  # read it to its end
                pass
        assert await read_metric(client, "nexa_text_arriving_requests") == 0
