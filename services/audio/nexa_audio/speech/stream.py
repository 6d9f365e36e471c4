"""One request's synthesis: sentence by sentence in a worker thread, each sentence's bytes sent as
soon as they are encoded, the admission slot held until the last one (or until the client leaves).

The next sentence is synthesised only when the response asks for more bytes, so a client that
leaves stops the work at the next sentence boundary: uvicorn reports the disconnect, Starlette
cancels the response, and the thread finishes the clause it is in (the kit's `in_thread`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from nexa_common.errors import error_body
from nexa_common.kit.cancellation import in_thread
from nexa_common.kit.models import Lease
from nexa_common.schemas.audio import SpeechAudioDelta, SpeechAudioDone, SpeechUsage

from ..metrics import AudioMetrics
from .encoders import StreamEncoder
from .engine import PiperEngine

log = logging.getLogger("nexa.audio.speech")


@dataclass
class SpeechJob:
    engine: PiperEngine
    sentences: list[str]
    speaker: int
    encoder: StreamEncoder
    metrics: AudioMetrics
    cancel: threading.Event = field(default_factory=threading.Event)
    synthesised: int = 0
    phoneme_ids: int = 0
    frames: int = 0
    samples: int = 0
    busy_s: float = 0.0
    completed: bool = False
    failed: bool = False
    lease: Lease | None = None
    """The voice's slot while the job runs; a failure mid-stream is reported on it (it counts against the
    engine's health, as an exception inside the slot would)."""

    def render(self, index: int, cancel: threading.Event) -> bytes:
        """Sentence `index` synthesised and encoded (worker thread); nothing once cancelled."""
        started = time.perf_counter()
        synthesis = self.engine.synthesize(self.sentences[index], self.speaker, cancel)
        if cancel.is_set():
            return b""
        data = self.encoder.encode(synthesis.samples)
        self.synthesised += 1
        self.phoneme_ids += synthesis.phoneme_ids
        self.frames += synthesis.frames
        self.samples += len(synthesis.samples)
        self.metrics.speech_sentences.inc()
        self.busy_s += time.perf_counter() - started
        return data

    def finish(self, cancel: threading.Event) -> bytes:
        started = time.perf_counter()
        data = self.encoder.finish()
        self.busy_s += time.perf_counter() - started
        return data

    @property
    def usage(self) -> SpeechUsage:
        return SpeechUsage(
            input_tokens=self.phoneme_ids, output_tokens=self.frames, total_tokens=self.phoneme_ids + self.frames
        )

    def close(self) -> None:
        """Record the outcome once the response is over, whichever way it ended."""
        if self.completed:
            seconds = self.samples / self.engine.sample_rate
            self.metrics.requests.labels("speech", "ok").inc()
            self.metrics.speech_seconds.inc(seconds)
            if seconds > 0:
                self.metrics.speech_real_time_factor.observe(self.busy_s / seconds)
            return
        self.encoder.close()
        if self.failed:
            self.metrics.requests.labels("speech", "error").inc()
            if self.lease is not None and self.lease.error is None:
                self.lease.error = RuntimeError("speech synthesis failed mid-stream")
            return
        self.metrics.requests.labels("speech", "cancelled").inc()
        log.info(
            "client disconnected; speech synthesis stopped after %d of %d sentences",
            self.synthesised,
            len(self.sentences),
            extra={"fields": {"task": "speech", "synthesised": self.synthesised, "sentences": len(self.sentences)}},
        )


async def audio_chunks(job: SpeechJob, first: bytes) -> AsyncIterator[bytes]:
    """The file's bytes: the first sentence's (already encoded), then each next sentence's, then the tail."""
    try:
        if first:
            yield first
        for index in range(1, len(job.sentences)):
            chunk = await in_thread(lambda cancel, i=index: job.render(i, cancel), job.cancel)  # type: ignore[misc]
            if chunk:
                yield chunk
        tail = await in_thread(job.finish, job.cancel)
        job.completed = True
        if tail:
            yield tail
    except Exception:
        job.failed = True
        log.exception("speech synthesis failed mid-stream")
        raise


def _event(payload: dict[str, object]) -> bytes:
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


async def sse_events(job: SpeechJob, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """OpenAI's speech events: `speech.audio.delta` per chunk (base64), then `speech.audio.done` with usage.
    A failure after the stream began is a last `data: {"error": ...}` event, as on the text routes."""
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        try:
            async for chunk in chunks:
                yield _event(SpeechAudioDelta(audio=base64.b64encode(chunk).decode("ascii")).model_dump())
        except Exception:
            yield _event(error_body(500, "Speech synthesis failed mid-stream; the server log has the details."))
            return
    yield _event(SpeechAudioDone(usage=job.usage).model_dump())


class SpeechResponse(StreamingResponse):
    """A streamed answer that always closes its generator and releases its slot, even when the client
    left while a chunk was being sent (the generator then sits at a `yield`, which only closing reaches)."""

    def __init__(
        self,
        content: AsyncIterator[bytes],
        on_close: Callable[[], Awaitable[None]],
        media_type: str,
        headers: dict[str, str],
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers)
        self._content = content
        self._on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            try:
                await self._content.aclose()  # type: ignore[attr-defined]
            finally:
                await self._on_close()
