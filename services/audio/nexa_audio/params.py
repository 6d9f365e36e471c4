"""A request's parameters: the seed's query parameters, overridden by OpenAI form fields, checked
against what the served model can do."""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError

from nexa_common.errors import APIError
from nexa_common.schemas.audio import AudioResponseFormat, TranscriptionForm

from .engine import Task, TranscribeOptions, Transcriber

DEFAULT_BEAM_SIZE = 5  # the seed's defaults
DEFAULT_TEMPERATURE = 0.0
NOTICE_HEADER = "X-Nexa-Notice"
_GRANULARITIES = ("timestamp_granularities[]", "timestamp_granularities")
_INCLUDE = ("include[]", "include")


class QueryParams(BaseModel):
    """The seed's query parameters (form fields of the same name win over them)."""

    beam_size: int | None = Field(default=None, ge=1, le=20, description="Beam size (default 5).")
    language: str | None = Field(default=None, max_length=16, description="ISO-639-1 code, e.g. 'en'.")
    temperature: float | None = Field(default=None, ge=0.0, le=1.0, description="Sampling temperature (default 0).")


@dataclass
class Plan:
    options: TranscribeOptions
    response_format: AudioResponseFormat
    words: bool
    headers: dict[str, str] = field(default_factory=dict)
    form: TranscriptionForm | None = None
    """The parsed form, for the ignored-fields header."""


def parse_form(fields: dict[str, list[str]]) -> TranscriptionForm:
    # Empty values mean "not given" (some clients send `language=` for auto-detection).
    lists = (*_GRANULARITIES, *_INCLUDE)
    data: dict[str, object] = {k: v[-1] for k, v in fields.items() if v and v[-1] != "" and k not in lists}
    for names in (_GRANULARITIES, _INCLUDE):
        values = [g for name in names for g in fields.get(name, []) if g]
        if values:
            data[names[0]] = values
    try:
        return TranscriptionForm.model_validate(data)
    except ValidationError as exc:
        # The shared handler turns this into a 400 naming the field.
        raise RequestValidationError([{**e, "loc": ("form", *e["loc"])} for e in exc.errors()]) from None


def plan(form: TranscriptionForm, query: QueryParams, task: Task, engine: Transcriber, model_name: str) -> Plan:
    language = (form.language or query.language or "").strip().lower() or None
    beam_size = form.beam_size or query.beam_size or DEFAULT_BEAM_SIZE
    temperature = next((t for t in (form.temperature, query.temperature) if t is not None), DEFAULT_TEMPERATURE)
    headers: dict[str, str] = {}
    if language is not None and language not in engine.languages:
        if not engine.multilingual:
            raise APIError(
                400,
                f"Model '{model_name}' is English-only and cannot handle language '{language}': a multilingual "
                f"Whisper model is needed (serve one with NEXA_AUDIO_MODEL, e.g. faster-whisper-small).",
                param="language",
                code="model_english_only",
            )
        raise APIError(
            400, f"Unknown language code '{language}': use an ISO-639-1 code such as 'en'.", param="language"
        )
    if task == "translate" and not engine.multilingual:
        # faster-whisper would silently transcribe anyway; say so instead of pretending to translate.
        task = "transcribe"
        language = "en"
        headers[NOTICE_HEADER] = (
            f"model '{model_name}' is English-only: the audio was transcribed as English, not translated"
        )
    words = "word" in (form.timestamp_granularities or [])
    options = TranscribeOptions(
        task=task,
        language=language,
        beam_size=beam_size,
        temperature=temperature,
        prompt=form.prompt,
        word_timestamps=words,
    )
    return Plan(options, form.response_format, words, headers, form)
