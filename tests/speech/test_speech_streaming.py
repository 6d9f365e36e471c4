"""Streaming: audio leaves sentence by sentence, SSE events parse with the openai client, and a client
that leaves stops the synthesis (seen in the service's own metrics, not in timings)."""

from __future__ import annotations

import base64
import time

import httpx
import openai
from openai._streaming import SSEDecoder
from speech_helpers import CANCELLED, FIVE_SENTENCES, SENTENCES, decoded, metric
from support import service_spec, start_ready

from nexa_cli.supervisor import Supervisor

MANY_SENTENCES = " ".join(f"This is sentence number {i}, which takes the voice a moment to say." for i in range(1, 31))


def test_first_audio_arrives_before_the_last_sentence_is_synthesised(
    router: httpx.Client, service: httpx.Client
) -> None:
    before = metric(service, SENTENCES)
    chunks: list[bytes] = []
    started = time.perf_counter()
    with router.stream("POST", "/v1/audio/speech", json={"input": FIVE_SENTENCES, "response_format": "mp3"}) as reply:
        assert reply.status_code == 200
        for chunk in reply.iter_raw():
            if not chunks:
                first_at = time.perf_counter() - started
                # The ordering itself: when the first bytes are here, the service has not yet synthesised all five.
                done_at_first_chunk = metric(service, SENTENCES) - before
            chunks.append(chunk)
    total = time.perf_counter() - started
    assert 1 <= done_at_first_chunk < 5, done_at_first_chunk
    assert first_at < total
    assert metric(service, SENTENCES) - before == 5
    assert len(chunks) > 1
    _, seconds = decoded(b"".join(chunks), "mp3")
    assert seconds > 10  # five sentences of speech, whole


def test_sse_events_parse_with_the_openai_client(client: openai.OpenAI) -> None:
    with client.audio.speech.with_streaming_response.create(
        model="gpt-4o-mini-tts", voice="coral", input=FIVE_SENTENCES, response_format="wav", stream_format="sse"
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [event.json() for event in SSEDecoder().iter_bytes(response.iter_bytes())]
    deltas, done = events[:-1], events[-1]
    assert len(deltas) >= 5 and {e["type"] for e in deltas} == {"speech.audio.delta"}
    assert done["type"] == "speech.audio.done"
    usage = done["usage"]
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 0
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    rate, seconds = decoded(audio, "wav")
    assert rate == 22_050 and seconds > 10


def test_client_leaving_mid_stream_stops_synthesis(speech_router_url: str, service: httpx.Client) -> None:
    sentences_before = metric(service, SENTENCES)
    cancelled_before = metric(service, *CANCELLED)
    with (
        httpx.Client(base_url=speech_router_url, timeout=60) as leaving,
        leaving.stream("POST", "/v1/audio/speech", json={"input": MANY_SENTENCES, "response_format": "pcm"}) as reply,
    ):
        assert reply.status_code == 200
        next(reply.iter_raw())  # the first sentence's audio, then hang up
    deadline = time.monotonic() + 60
    while metric(service, *CANCELLED) == cancelled_before:
        assert time.monotonic() < deadline, "the service never noticed the client leaving"
        time.sleep(0.2)
    synthesised = metric(service, SENTENCES) - sentences_before
    assert 1 <= synthesised < 30
    time.sleep(1)  # nothing more is synthesised for that request afterwards
    assert metric(service, SENTENCES) - sentences_before == synthesised


def test_the_queue_applies_and_a_client_that_leaves_frees_its_place(supervisor: Supervisor) -> None:
    # One request at a time and none waiting: a second one while the first streams is a 429.
    env = {"NEXA_AUDIO_MODEL": "whisper-tiny.en", "NEXA_AUDIO_QUEUE_SIZE": "0", "NEXA_AUDIO_MAX_CONCURRENCY": "1"}
    url = start_ready(supervisor, service_spec("audio", env, name="audio-speech-queue"))
    with httpx.Client(base_url=url, timeout=60) as http:
        with http.stream("POST", "/v1/audio/speech", json={"input": MANY_SENTENCES, "response_format": "pcm"}) as first:
            assert first.status_code == 200
            # Kept referenced: a dropped iterator would close the response, and the client would have left.
            chunks = first.iter_raw()
            next(chunks)
            busy = http.post("/v1/audio/speech", json={"input": "Hello."})
            assert busy.status_code == 429 and busy.headers["retry-after"]
            assert busy.json()["error"]["code"] == "queue_full"
        deadline = time.monotonic() + 60
        while metric(http, *CANCELLED) == 0:  # the first client has left; its slot comes back
            assert time.monotonic() < deadline, "the first request never ended"
            time.sleep(0.2)
        assert http.post("/v1/audio/speech", json={"input": "Hello."}).status_code == 200
