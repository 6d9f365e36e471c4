"""Upload limits, the admission queue, disconnects and temp-file hygiene, on a private copy of the
audio service (1 MB upload limit, one request at a time, no queue)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from audio_helpers import JFK_SENTENCE, encode, load, normalise
from support import service_spec

from nexa_cli.supervisor import Supervisor

MIB = 1024 * 1024
BOUNDARY = "nexa-test-boundary"


@pytest.fixture(scope="module")
def upload_parent(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("audio-uploads")


@pytest.fixture(scope="module")
def small_url(upload_parent: Path, nexa_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {
        "NEXA_AUDIO_MODEL": "whisper-tiny.en",
        "NEXA_AUDIO_MAX_UPLOAD_MB": "1",
        "NEXA_AUDIO_MAX_CONCURRENCY": "1",
        "NEXA_AUDIO_QUEUE_SIZE": "0",
        "NEXA_AUDIO_TMP_DIR": str(upload_parent),
    }
    spec = service_spec("audio", env, name="audio-small-limits")
    with Supervisor(tmp_path_factory.mktemp("audio-limits-logs")) as supervisor:
        supervisor.wait_ready(supervisor.start(spec), 180)
        yield spec.url


@pytest.fixture(scope="module")
def http(small_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def jfk(shared_data: Path) -> bytes:
    """jfk.flac (1.1 MB, over this copy's limit) as a 33 kB mp3."""
    return encode(load(shared_data / "jfk.flac"), "mp3", "libmp3lame")


@pytest.fixture(scope="module")
def long_speech(shared_data: Path) -> bytes:
    """Two minutes of speech (jfk twelve times) as 16 kb/s Opus: well under 1 MB, many seconds of work."""
    return encode(np.tile(load(shared_data / "jfk.flac"), 12), "ogg", "libopus", bit_rate=16_000)


def assert_up(http: httpx.Client, jfk: bytes) -> None:
    assert http.get("/health").status_code == 200
    response = http.post("/v1/audio/transcriptions", files={"file": ("jfk.mp3", jfk)})
    assert response.status_code == 200, response.text
    assert normalise(response.json()["text"]) == normalise(JFK_SENTENCE)


def test_declared_oversize_upload_is_413_at_once(http: httpx.Client, jfk: bytes) -> None:
    response = http.post("/v1/audio/transcriptions", files={"file": ("big.wav", b"\0" * (2 * MIB))})
    assert response.status_code == 413, response.text
    error = response.json()["error"]
    assert error["type"] == "request_too_large" and error["param"] == "file" and "1 MB" in error["message"]
    assert_up(http, jfk)


def test_streamed_oversize_upload_is_refused_while_streaming(http: httpx.Client, jfk: bytes) -> None:
    # No Content-Length (chunked): the service can only count as the bytes arrive.
    sent = 0
    chunk = b"\0" * (256 * 1024)
    total_chunks = 4 * 64  # 64 MiB offered

    def body() -> Iterator[bytes]:
        nonlocal sent
        yield (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        for _ in range(total_chunks):
            sent += len(chunk)
            yield chunk
        yield f"\r\n--{BOUNDARY}--\r\n".encode()

    headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
    # httpx stops sending when the server answers and closes, then reads the answer.
    response = http.post("/v1/audio/transcriptions", content=body(), headers=headers)
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "file_too_large"
    # It stopped reading long before the end (the rest sat in socket buffers, at most a few MB).
    assert sent < 16 * MIB, f"the client sent {sent / MIB:.0f} MiB before the service refused"
    assert_up(http, jfk)


async def test_full_queue_is_429_and_a_disconnect_frees_the_model(
    small_url: str, long_speech: bytes, jfk: bytes
) -> None:
    cancelled = r'nexa_audio_requests_total\{outcome="cancelled",task="transcribe"\}'
    async with httpx.AsyncClient(base_url=small_url, timeout=120) as client:

        async def gauge(pattern: str) -> float:
            found = re.search(rf"^{pattern} (\S+)$", (await client.get("/metrics")).text, re.M)
            return float(found.group(1)) if found else 0.0

        async def wait_for_running(value: float) -> None:
            for _ in range(600):  # at most ~60 s
                if await gauge("nexa_audio_running") == value:
                    return
                await asyncio.sleep(0.1)
            pytest.fail(f"nexa_audio_running never became {value}")

        cancelled_before = await gauge(cancelled)
        first = asyncio.ensure_future(
            client.post("/v1/audio/transcriptions", files={"file": ("long.ogg", long_speech)})
        )
        await wait_for_running(1)
        busy = await client.post("/v1/audio/transcriptions", files={"file": ("jfk.mp3", jfk)})
        assert busy.status_code == 429, busy.text
        assert busy.headers["retry-after"] == "2"
        assert busy.json()["error"]["code"] == "queue_full"
        assert not first.done()
        # The first client goes away mid-transcription: the model stops after its current window.
        first.cancel()
        await asyncio.gather(first, return_exceptions=True)
        await wait_for_running(0)
        assert await gauge(cancelled) == cancelled_before + 1
        done = await client.post("/v1/audio/transcriptions", files={"file": ("jfk.mp3", jfk)})
        assert done.status_code == 200
        assert normalise(done.json()["text"]) == normalise(JFK_SENTENCE)


def test_uploads_are_private_and_removed(http: httpx.Client, upload_parent: Path, jfk: bytes) -> None:
    # Every kind of ending: success, undecodable, oversize, malformed body, disconnect (earlier tests).
    statuses = [
        http.post("/v1/audio/transcriptions", files={"file": ("jfk.mp3", jfk)}).status_code,
        http.post("/v1/audio/transcriptions", files={"file": ("x.mp3", b"garbage" * 1000)}).status_code,
        http.post("/v1/audio/transcriptions", files={"file": ("x.wav", b"\0" * (2 * MIB))}).status_code,
        http.post(
            "/v1/audio/transcriptions",
            content=f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"\r\n\r\ntruncated'.encode(),
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        ).status_code,
    ]
    assert statuses == [200, 400, 413, 400]
    folders = list(upload_parent.iterdir())
    assert len(folders) == 1 and folders[0].name.startswith("nexa-audio-")
    assert folders[0].stat().st_mode & 0o777 == 0o700
    assert list(folders[0].iterdir()) == []
