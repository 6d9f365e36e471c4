"""`/v1/audio/transcriptions` and `/v1/audio/translations`.

The body is parsed by `upload.receive_upload` rather than by FastAPI's `File`/`Form`
parameters, so the request body is documented here by hand (`openapi_extra`).
"""

from __future__ import annotations

import logging
import threading
from typing import Annotated, Any, cast

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from nexa_common.errors import APIError, error_responses
from nexa_common.fields import account_fields
from nexa_common.kit.cancellation import CLIENT_CLOSED, in_thread, while_connected
from nexa_common.modalities import Capability
from nexa_common.schemas.audio import TranscriptionForm, TranscriptionResponse, VerboseTranscriptionResponse
from nexa_common.schemas.keep_alive import kept

from .decode import UndecodableAudio
from .engine import Task, Transcriber, Transcript
from .formats import render
from .params import NOTICE_HEADER, Plan, QueryParams, parse_form, plan
from .state import AudioState, AudioStateDep
from .upload import receive_upload

log = logging.getLogger("nexa.audio")
router = APIRouter(tags=["audio"])


def _form_schema() -> dict[str, Any]:
    schema = TranscriptionForm.model_json_schema(by_alias=True)
    properties = {"file": {"type": "string", "format": "binary", "description": "The audio file."}}
    properties.update(schema["properties"])
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file"], "properties": properties},
                    "encoding": {"timestamp_granularities[]": {"style": "form", "explode": True}},
                }
            },
        }
    }


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The transcript, in the requested `response_format`.",
        "model": TranscriptionResponse | VerboseTranscriptionResponse,
        "content": {
            "text/plain": {"schema": {"type": "string"}, "example": "1\n00:00:00,000 --> 00:00:02,000\nHello.\n"},
            "text/vtt": {"schema": {"type": "string"}},
        },
        "headers": {
            NOTICE_HEADER: {
                "description": "Set when the request was served differently than asked: a translation "
                "by an English-only model is answered as an English transcription.",
                "schema": {"type": "string"},
            }
        },
    },
    **error_responses(400, 404, 413, 429, 503, 507),
}


def _undecodable() -> APIError:
    return APIError(
        400,
        "The uploaded file is not decodable audio. Send a format FFmpeg reads, such as wav, flac, mp3, ogg, "
        "m4a or webm.",
        param="file",
        code="invalid_audio",
    )


async def _serve(request: Request, state: AudioState, query: QueryParams, task: Task) -> Response:
    assert state.upload_dir is not None
    capability = Capability.TRANSCRIPTION if task == "transcribe" else Capability.TRANSLATION
    transcript: Transcript | None = None
    try:
        async with receive_upload(request, state.upload_dir, state.max_file_bytes) as upload:
            form = parse_form(upload.fields)
            account_fields(request, form, strict=state.settings.strict_fields)
            model = state.pool.get(form.model, capability)

            async def job(cancel: threading.Event) -> tuple[Plan, Transcript]:
                # Hold the model (loading it if needed), then wait for one of its slots.
                async with state.pool.use(model, kept(form.keep_alive)) as engine:
                    request_plan = plan(form, query, task, cast(Transcriber, engine), model.name)
                    async with state.pool.slot(model) as lease:
                        whisper = cast(Transcriber, lease.engine)
                        try:
                            return request_plan, await in_thread(
                                lambda c: whisper.transcribe(upload.path, request_plan.options, c), cancel
                            )
                        except UndecodableAudio:
                            # The upload's fault, not the engine's: answered inside the slot as such.
                            raise _undecodable() from None

            cancel = threading.Event()
            request_plan, transcript = await while_connected(request, job(cancel), cancel)
    except ClientDisconnect:
        pass
    except APIError as exc:
        if exc.status != CLIENT_CLOSED:
            raise
    if transcript is None or transcript.cancelled:
        log.info("client disconnected; transcription stopped", extra={"fields": {"task": task}})
        state.metrics.requests.labels(task, "cancelled").inc()
        return Response(status_code=499)  # nginx's "client closed request"; nobody is there to read it
    state.metrics.observe(transcript)
    state.metrics.requests.labels(task, "ok").inc()
    return render(
        transcript, request_plan.response_format, request_plan.options.task, request_plan.words, request_plan.headers
    )


async def _counted(request: Request, state: AudioState, query: QueryParams, task: Task) -> Response:
    requests = state.metrics.requests
    try:
        return await _serve(request, state, query, task)
    except RequestValidationError:
        requests.labels(task, "client_error").inc()
        raise
    except APIError as exc:
        outcome = "rejected" if exc.status in (429, 503) else "client_error" if exc.status < 500 else "error"
        requests.labels(task, outcome).inc()
        raise
    except Exception:
        requests.labels(task, "error").inc()
        raise


LegacyQuery = Annotated[QueryParams, Query()]


@router.post("/v1/audio/transcriptions", response_model=None, responses=_RESPONSES, openapi_extra=_form_schema())
async def transcriptions(request: Request, state: AudioStateDep, query: LegacyQuery) -> Response:
    """Transcribe audio into text in its own language. Parameters come as form fields (OpenAI) or as the
    query parameters `beam_size`, `language`, `temperature` of Nexa's original route; a form field wins."""
    return await _counted(request, state, query, "transcribe")


@router.post("/v1/audio/translations", response_model=None, responses=_RESPONSES, openapi_extra=_form_schema())
async def translations(request: Request, state: AudioStateDep, query: LegacyQuery) -> Response:
    """Translate speech into English text. An English-only model transcribes English audio instead (and says so
    in the `X-Nexa-Notice` header); a non-English `language` with such a model is a 400."""
    return await _counted(request, state, query, "translate")
