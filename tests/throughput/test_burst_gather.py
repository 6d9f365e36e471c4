"""An idle batched engine given a sequence while more requests are on their way (in the service's
route, not submitted yet) waits for them, so that a burst's prompts share one step; a request that
fails on its way does not keep it waiting. In-process, with the real SmolLM2: the count of requests
on their way is the test's, so nothing depends on how fast the machine parses them."""

from __future__ import annotations

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


@pytest.fixture
def engine(gguf: Path, coming: Coming) -> Iterator[BatchedEngine]:
    # A long gather bound: the engine may only stop waiting because the requests arrived or failed.
    engine = BatchedEngine(
        gguf, n_ctx=512, n_threads=1, n_batch=128, n_gpu_layers=0, slots=2, coming=coming, gather_max_s=HANG_GUARD_S
    )
    yield engine
    engine.close()


def _submit(engine: BatchedEngine, prompt: str, coming: Coming | None = None) -> threading.Event:
    """One greedy token for `prompt`, given up as on its way just before it is submitted (as the
    service does); the event is set once the sequence has ended."""
    ended = threading.Event()
    sequence = Sequence(engine.tokenize(prompt, add_bos=True, special=True), 1, Sampling(temperature=0))

    def deliver(items: list[object]) -> None:
        if any(item is None or isinstance(item, BaseException) for item in items):
            ended.set()

    if coming is not None:
        coming.count -= 1
    engine.submit(sequence, deliver)  # type: ignore[arg-type]
    return ended


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
