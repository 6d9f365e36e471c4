"""`POST /v1/audio/speech`: OpenAI's text-to-speech route on a Piper voice of the audio service's pool.

The request's `model` picks the voice (a catalogue name or alias such as `tts-1`; absent: the first
voice the service was given, see `ModelPool.get`); it is loaded on its first request and held until
the answer's last byte. Everything that can be refused is refused before the first byte (model, voice, input, queue), and
the first sentence is synthesised before the answer starts, so its failures are ordinary error
answers too; the rest streams (see `stream`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import cast

from fastapi import APIRouter, Request
from fastapi.responses import Response

from nexa_common.catalogue import ModelError, locate
from nexa_common.errors import APIError, error_responses
from nexa_common.fields import IGNORED_FIELDS_HEADER, account_fields
from nexa_common.kit.cancellation import CLIENT_CLOSED, in_thread, while_connected
from nexa_common.kit.models import PooledModel
from nexa_common.modalities import Capability
from nexa_common.schemas.audio import SPEECH_MEDIA_TYPES, SpeechRequest
from nexa_common.schemas.keep_alive import kept

from ..state import AudioState, AudioStateDep
from .encoders import StreamEncoder
from .engine import PiperEngine, voice_speakers
from .sentences import split
from .stream import SpeechJob, SpeechResponse, audio_chunks, sse_events
from .voices import pick

log = logging.getLogger("nexa.audio.speech")
router = APIRouter(tags=["audio"])

SAMPLE_RATE_HEADER = "X-Nexa-Sample-Rate"
VOICE_HEADER = "X-Nexa-Voice"

_AUDIO_TYPES = {media: {"schema": {"type": "string", "format": "binary"}} for media in SPEECH_MEDIA_TYPES.values()}
RESPONSES: dict[int | str, dict[str, object]] = {
    200: {
        "description": "The audio in `response_format`, streamed sentence by sentence (chunked); with "
        '`stream_format: "sse"`, `speech.audio.delta` events and a last `speech.audio.done`.',
        "content": {**_AUDIO_TYPES, "text/event-stream": {"schema": {"type": "string"}}},
        "headers": {
            SAMPLE_RATE_HEADER: {"description": "Sample rate of the audio (pcm: 16-bit LE mono at this rate).",
                                 "schema": {"type": "integer"}},
            VOICE_HEADER: {"description": "The speaker that `voice` selected.", "schema": {"type": "string"}},
            IGNORED_FIELDS_HEADER: {"description": "Fields accepted but not honoured (`instructions`, unknown ones).",
                             "schema": {"type": "string"}},
        },
    },
    **error_responses(400, 404, 429, 503, 507),
}  # fmt: skip


_HEADER_MAX_CHARS = 1024


def _header_safe(text: str) -> str:
    # Printable ASCII without commas: a control character in a header makes uvicorn drop the connection,
    # and anything beyond latin-1 cannot be sent at all.
    return "".join(c for c in text if c.isascii() and c.isprintable() and c != ",")


@router.post("/v1/audio/speech", response_model=None, responses=RESPONSES)  # type: ignore[arg-type]
async def speech(request: Request, state: AudioStateDep, body: SpeechRequest) -> Response:
    """Speak `input` with a Piper voice. The answer starts once the first sentence is synthesised and streams
    the rest sentence by sentence. `instructions` is accepted and ignored (Piper has no such control)."""
    requests = state.metrics.requests
    try:
        return await _speak(request, state, body)
    except APIError as exc:
        outcome = (
            "cancelled"
            if exc.status == CLIENT_CLOSED
            else "rejected"
            if exc.status in (429, 503)
            else "client_error"
            if exc.status < 500
            else "error"
        )
        requests.labels("speech", outcome).inc()
        if exc.status == CLIENT_CLOSED:
            return Response(status_code=CLIENT_CLOSED)  # nobody is there to read it
        raise
    except Exception:
        requests.labels("speech", "error").inc()
        raise


def _speakers_before_loading(model: PooledModel, state: AudioState) -> tuple[str, ...] | None:
    """The voice's speakers from its config file; None where that cannot be read (the pool then answers
    why the voice cannot be served: not pulled, failed)."""
    if model.entry is None:
        return None
    try:
        return voice_speakers(locate(model.entry, state.settings.cache_dir).path)
    except (ModelError, OSError, ValueError):
        return None


async def _speak(request: Request, state: AudioState, body: SpeechRequest) -> Response:
    account_fields(request, body, strict=state.settings.strict_fields)
    model = state.pool.get(body.model, Capability.SPEECH)  # 404 / 400 model_wrong_route before anything loads
    sentences = split(body.input)
    if not sentences:
        raise APIError(400, "The input has nothing to speak (no letters or digits).", param="input")
    speakers = _speakers_before_loading(model, state)
    if speakers is not None:
        pick(body.voice, speakers, model.name)  # an unknown voice loads nothing (and evicts nothing for room)
    held = contextlib.AsyncExitStack()
    cancel = threading.Event()
    jobs: list[SpeechJob] = []

    async def first_sentence() -> bytes:
        # Hold the voice (loading it if this is its first request) until the last byte is sent, then
        # wait for one of its slots (429 when its queue is full).
        engine = cast(PiperEngine, await held.enter_async_context(state.pool.use(model, kept(body.keep_alive))))
        speaker = pick(body.voice, engine.speakers, model.name)
        encoder = StreamEncoder(body.response_format, engine.sample_rate, body.speed)
        job = SpeechJob(engine, sentences, speaker, encoder, state.metrics)
        jobs.append(job)
        job.lease = await held.enter_async_context(state.pool.slot(model))
        return await in_thread(lambda c: job.render(0, c), cancel)

    try:
        first = await while_connected(request, first_sentence(), cancel)
    except BaseException as exc:  # counted by the caller; only the resources are released here
        if isinstance(exc, APIError) and exc.status == CLIENT_CLOSED:
            log.info("client disconnected before the first sentence; speech synthesis stopped")
        for job in jobs:
            job.encoder.close()
        await held.aclose()
        raise
    (job,) = jobs

    async def close() -> None:
        try:
            job.close()
        finally:
            await held.aclose()

    # A voice's speaker names come from its config file, in any script.
    headers = {
        SAMPLE_RATE_HEADER: str(job.encoder.rate),
        VOICE_HEADER: _header_safe(job.engine.speakers[job.speaker]) or str(job.speaker),
    }
    chunks = audio_chunks(job, first)
    if body.stream_format == "sse":
        headers["Cache-Control"] = "no-cache"
        return SpeechResponse(sse_events(job, chunks), close, "text/event-stream", headers)
    return SpeechResponse(chunks, close, SPEECH_MEDIA_TYPES[body.response_format], headers)
