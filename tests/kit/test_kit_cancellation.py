"""A client that leaves mid-generation frees the model's slot for the next queued request, in every
service: text stops within a token, audio within a segment, image within one diffusion step.

First through HTTP (real services, one slot each: the queued request starts, and the abandoned
work provably did not run to its end), then at the engine itself, where the moment the client
leaves can be placed exactly."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
from audio.audio_helpers import JFK_SENTENCE, encode, load, normalise

from nexa_audio.engine import TranscribeOptions, WhisperEngine
from nexa_audio.settings import Settings as AudioSettings
from nexa_common import catalogue
from nexa_image.diffusers_engine import DiffusersEngine
from nexa_image.engine import GenerationCancelled, GenerationJob
from nexa_image.settings import Settings as ImageSettings
from nexa_text.batched_engine import BatchedEngine
from nexa_text.engine import Sampling, Sequence
from nexa_text.llama_engine import LlamaEngine

COUNTING = "1, 2, 3, 4, 5, 6, 7, 8,"
TIMEOUT = httpx.Timeout(180.0, connect=5.0)


async def metric(client: httpx.AsyncClient, name: str) -> float:
    found = re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", (await client.get("/metrics")).text, re.M)
    return sum(float(v) for v in found)


async def until(client: httpx.AsyncClient, name: str, value: float) -> None:
    for _ in range(600):  # bounded: at most ~60 s
        if await metric(client, name) >= value:
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"{name} never reached {value}")


async def leave_while_the_next_waits(
    client: httpx.AsyncClient, modality: str, abandoned: asyncio.Task[object], queued: Callable[[], object]
) -> httpx.Response:
    """Wait until `abandoned` runs, queue the next request, then make the first client leave."""
    await until(client, f"nexa_{modality}_running", 1)
    waiting = asyncio.ensure_future(queued())  # type: ignore[arg-type]
    await until(client, f"nexa_{modality}_queue_depth", 1)
    assert not abandoned.done()
    abandoned.cancel()  # the client goes away: its connection is closed
    await asyncio.gather(abandoned, return_exceptions=True)
    response = await asyncio.wait_for(waiting, 180)
    assert isinstance(response, httpx.Response)
    return response


# --- through HTTP -----------------------------------------------------------------------------


async def test_text_a_stream_left_mid_generation_frees_the_slot(one_at_a_time: Callable[..., str]) -> None:
    url = one_at_a_time("text", {"NEXA_TEXT_MODEL": "smollm2"})
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        before = await metric(client, "nexa_text_tokens_generated_total")
        received = 0

        async def stream() -> None:
            nonlocal received
            body = {"prompt": COUNTING, "max_tokens": 1500, "temperature": 0, "stream": True}
            async with client.stream("POST", "/v1/completions", json=body) as response:
                async for line in response.aiter_lines():
                    received += line.startswith("data: ")

        abandoned = asyncio.create_task(stream())
        short = {"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}
        response = await leave_while_the_next_waits(
            client, "text", abandoned, lambda: client.post("/v1/completions", json=short)
        )
        assert response.status_code == 200, response.text
        generated = await metric(client, "nexa_text_tokens_generated_total") - before
    # The abandoned sequence stopped soon after its client left, far from its 1500 tokens.
    assert generated - 4 < received + 100


async def test_audio_a_transcription_left_mid_file_frees_the_slot(
    one_at_a_time: Callable[..., str], shared_data: Path
) -> None:
    url = one_at_a_time("audio", {"NEXA_AUDIO_MODEL": "whisper-tiny.en"})
    jfk = load(shared_data / "jfk.flac")
    long_speech = encode(np.tile(jfk, 12), "ogg", "libopus", bit_rate=16_000)  # two minutes
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        before = await metric(client, "nexa_audio_processed_seconds_total")
        abandoned = asyncio.create_task(client.post("/v1/audio/transcriptions", files={"file": ("l.ogg", long_speech)}))
        flac = (shared_data / "jfk.flac").read_bytes()
        response = await leave_while_the_next_waits(
            client,
            "audio",
            abandoned,
            lambda: client.post("/v1/audio/transcriptions", files={"file": ("j.flac", flac)}),
        )
        assert response.status_code == 200, response.text
        assert normalise(response.json()["text"]) == normalise(JFK_SENTENCE)
        processed = await metric(client, "nexa_audio_processed_seconds_total") - before
        cancelled = await metric(client, 'nexa_audio_requests_total{outcome="cancelled",task="transcribe"}')
    assert processed == pytest.approx(11.0, abs=0.5)  # only the short file: the long one never finished
    assert cancelled == 1


async def test_image_a_generation_left_mid_loop_frees_the_slot(
    one_at_a_time: Callable[..., str], tiny_sd: Path
) -> None:
    url = one_at_a_time("image", {"NEXA_IMAGE_MODEL": "tiny-sd", "NEXA_IMAGE_MAX_STEPS": "500"})
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT) as client:
        before = await metric(client, "nexa_image_steps_total")
        big = {"prompt": "a long one", "width": 256, "height": 256, "sample_steps": 500, "seed": 1}
        abandoned = asyncio.create_task(client.post("/v1/txt2img", json=big))
        small = {"prompt": "next", "width": 64, "height": 64, "sample_steps": 2, "seed": 2}
        response = await leave_while_the_next_waits(
            client, "image", abandoned, lambda: client.post("/v1/txt2img", json=small)
        )
        assert response.status_code == 200, response.text
        steps = await metric(client, "nexa_image_steps_total") - before
        failures = await metric(client, "nexa_image_generation_failures_total")
    assert steps == 2  # the 500-step generation stopped, uncounted, and never failed
    assert failures == 0


# --- at the engine: the moment of leaving placed exactly ----------------------------------------


class LeavesAfter(threading.Event):
    """A cancel flag the client "sets" after the engine has looked at it `checks` times."""

    def __init__(self, checks: int) -> None:
        super().__init__()
        self.checks = checks

    def is_set(self) -> bool:
        self.checks -= 1
        return self.checks < 0 or super().is_set()


@pytest.fixture(scope="module")
def gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return catalogue.resolve("smollm2", tmp_path_factory.mktemp("cache")).path


def _counting(engine: LlamaEngine | BatchedEngine, stop_after: int) -> int:
    sequence = Sequence(engine.tokenize(COUNTING, add_bos=True, special=True), 500, Sampling(temperature=0))
    produced = 0
    for _ in engine.generate(sequence):
        produced += 1
        if produced == stop_after:
            sequence.cancel.set()  # the client leaves after this token
    return produced


def test_text_the_one_sequence_engine_stops_at_the_next_token(gguf: Path) -> None:
    engine = LlamaEngine(gguf, n_ctx=512, n_threads=1, n_batch=64, n_gpu_layers=0)
    try:
        assert _counting(engine, 5) == 5
    finally:
        engine.close()


def test_text_the_batched_engine_stops_within_a_step(gguf: Path) -> None:
    engine = BatchedEngine(gguf, n_ctx=512, n_threads=1, n_batch=64, n_gpu_layers=0, slots=2)
    try:
        # Counted where the scheduler hands tokens over (its own thread), not where a reader takes
        # them from a queue: a reader behind a busy machine would see tokens that were sampled
        # before the flag, which says nothing about when the engine stops.
        sequence = Sequence(engine.tokenize(COUNTING, add_bos=True, special=True), 500, Sampling(temperature=0))
        produced, ended = 0, threading.Event()

        def deliver(items: list[object]) -> None:
            nonlocal produced
            for item in items:
                if item is None or isinstance(item, BaseException):
                    ended.set()
                    return
                produced += 1
                if produced == 5:
                    sequence.cancel.set()  # the client leaves after this token

        engine.submit(sequence, deliver)  # type: ignore[arg-type]
        assert ended.wait(120), "the sequence never ended after its client left"
        assert 5 <= produced <= 6  # at most the one step already in flight
        assert engine.failure() is None
    finally:
        engine.close()


def test_audio_the_engine_stops_after_the_segment_being_decoded(shared_data: Path, tmp_path: Path) -> None:
    speech = tmp_path / "long.flac"
    speech.write_bytes(encode(np.tile(load(shared_data / "jfk.flac"), 6), "flac", "flac"))
    path = catalogue.resolve("whisper-tiny.en", tmp_path).path
    engine = WhisperEngine(path, AudioSettings(threads=1, vad=False))
    try:
        # One look after decoding the file, one after each segment: the client leaves in segment 2.
        transcript = engine.transcribe(speech, TranscribeOptions(beam_size=1), LeavesAfter(2))
        full = engine.transcribe(speech, TranscribeOptions(beam_size=1), threading.Event())
    finally:
        engine.close()
    assert transcript.cancelled and len(transcript.segments) == 2
    assert not full.cancelled and len(full.segments) > 2


def test_image_the_engine_stops_within_one_diffusion_step(tiny_sd: Path) -> None:
    engine = DiffusersEngine.load(catalogue.resolve("tiny-sd", tiny_sd), ImageSettings(threads=1))
    job = GenerationJob("a cat", "", 64, 64, 20, 7.0, [1])
    with pytest.raises(GenerationCancelled, match="after step 4 of 20"):
        engine.generate(job, LeavesAfter(3))  # looked at after each step: the client left during step 4
    # The pipeline is whole again for the next request.
    assert engine.generate(job).steps_run == 20
