"""`POST /v1/audio/speech`: OpenAI's text-to-speech route on the service's Piper voice.

Everything that can be refused is refused before the first byte (model, voice, input, queue), and
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

from nexa_common import catalogue
from nexa_common.catalogue import Capability
from nexa_common.errors import APIError, error_responses
from nexa_common.kit.cancellation import CLIENT_CLOSED, in_thread, while_connected
from nexa_common.kit.models import PooledModel
from nexa_common.schemas.audio import SPEECH_MEDIA_TYPES, SpeechRequest

from ..state import AudioState, AudioStateDep
from .encoders import StreamEncoder
from .engine import PiperEngine
from .sentences import split
from .stream import SpeechJob, SpeechResponse, audio_chunks, sse_events
from .voices import pick

log = logging.getLogger("nexa.audio.speech")
router = APIRouter(tags=["audio"])

SAMPLE_RATE_HEADER = "X-Nexa-Sample-Rate"
VOICE_HEADER = "X-Nexa-Voice"
IGNORED_HEADER = "X-Nexa-Ignored-Fields"

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
            IGNORED_HEADER: {"description": "Fields accepted but not honoured (`instructions`, unknown ones).",
                             "schema": {"type": "string"}},
        },
    },
    **error_responses(400, 404, 429, 503),
}  # fmt: skip


def _voice_model(requested: str | None, state: AudioState) -> PooledModel:
    """The served voice, if `requested` names it (or an alias of it, or nothing)."""
    # The voice is the pool's companion of the Whisper model (NEXA_AUDIO_SPEECH_MODEL); one that could not
    # be configured is still there, failed, so requests hear why.
    voice = next((m for m in state.pool.models.values() if m is not state.pool.default), None)
    if voice is None:
        raise APIError(
            503,
            "This audio service has no voice model: set NEXA_AUDIO_SPEECH_MODEL (e.g. piper-joe).",
            code="model_not_configured",
        )
    if requested is None:
        return voice
    named = state.pool.find(requested)
    if named is voice:
        return voice  # its name, or an alias: tts-1, tts-1-hd, gpt-4o-mini-tts
    entry = named.entry if named is not None else catalogue.lookup(requested)
    if entry is not None and Capability.TRANSCRIPTION in entry.capabilities:
        raise APIError(
            400,
            f"'{requested}' is an audio transcription model; use /v1/audio/transcriptions.",
            param="model",
            code="model_wrong_route",
        )
    aliases = ", ".join(voice.entry.aliases) if voice.entry else ""
    raise APIError(
        404,
        f"Model '{requested}' is not served here. This server speaks with '{voice.name}'"
        + (f" (also called {aliases})" if aliases else "")
        + ".",
        param="model",
        code="model_not_found",
    )


_HEADER_MAX_CHARS = 1024


def _header_safe(text: str) -> str:
    # Printable ASCII without commas: a control character in a header makes uvicorn drop the connection,
    # and anything beyond latin-1 cannot be sent at all.
    return "".join(c for c in text if c.isascii() and c.isprintable() and c != ",")


def _ignored(body: SpeechRequest) -> str:
    """The ignored-fields header: `instructions` (Piper has no style control) and unknown fields, named
    rather than silently dropped. Field names are the client's: cleaned for a header, and bounded."""
    names = (["instructions"] if body.instructions else []) + sorted(body.model_extra or {})
    cleaned = (_header_safe(name)[:64] for name in names)
    return ",".join(dict.fromkeys(n for n in cleaned if n))[:_HEADER_MAX_CHARS]


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


async def _speak(request: Request, state: AudioState, body: SpeechRequest) -> Response:
    voice = _voice_model(body.model, state)
    engine = cast(PiperEngine, voice.require_ready())
    speaker = pick(body.voice, engine.speakers, voice.name)
    sentences = split(body.input)
    if not sentences:
        raise APIError(400, "The input has nothing to speak (no letters or digits).", param="input")
    encoder = StreamEncoder(body.response_format, engine.sample_rate, body.speed)
    job = SpeechJob(engine, sentences, speaker, encoder, state.metrics)
    held = contextlib.AsyncExitStack()
    cancel = threading.Event()

    async def first_sentence() -> bytes:
        lease = await held.enter_async_context(state.pool.slot(voice))  # 429 when the voice's queue is full
        job.lease = lease
        return await in_thread(lambda c: job.render(0, c), cancel)

    async def close() -> None:
        try:
            job.close()
        finally:
            await held.aclose()

    try:
        first = await while_connected(request, first_sentence(), cancel)
    except BaseException as exc:  # counted by the caller; only the resources are released here
        if isinstance(exc, APIError) and exc.status == CLIENT_CLOSED:
            log.info("client disconnected before the first sentence; speech synthesis stopped")
        job.encoder.close()
        await held.aclose()
        raise
    # A voice's speaker names come from its config file, in any script.
    headers = {
        SAMPLE_RATE_HEADER: str(encoder.rate),
        VOICE_HEADER: _header_safe(engine.speakers[speaker]) or str(speaker),
    }
    if ignored := _ignored(body):
        headers[IGNORED_HEADER] = ignored
    chunks = audio_chunks(job, first)
    if body.stream_format == "sse":
        headers["Cache-Control"] = "no-cache"
        return SpeechResponse(sse_events(job, chunks), close, "text/event-stream", headers)
    return SpeechResponse(chunks, close, SPEECH_MEDIA_TYPES[body.response_format], headers)
