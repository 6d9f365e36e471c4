"""Audio wire types: the form fields of /v1/audio/transcriptions and /translations, and the answers.

Nexa's original routes took `beam_size`, `language` and `temperature` as query parameters; OpenAI clients
send form fields. Both are accepted; a form field wins over a query parameter.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from ..fields import AccountedRequest, Advisory
from .keep_alive import KeepAlive

AudioResponseFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]
TimestampGranularity = Literal["segment", "word"]


class TranscriptionForm(AccountedRequest):
    """The form fields besides `file` (documented once; the service and the router declare them).
    Unknown fields are kept, to be named in the `X-Nexa-Ignored-Fields` header."""

    model: str | None = Field(
        default=None,
        max_length=512,
        description="The model to transcribe with (see /v1/models); absent: the service's default model.",
    )
    keep_alive: KeepAlive | None = None
    language: str | None = Field(default=None, max_length=16, description="ISO-639-1 code, e.g. 'en'.")
    prompt: str | None = Field(default=None, max_length=4000, description="Text that sets the style or vocabulary.")
    response_format: AudioResponseFormat = "json"
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    beam_size: int | None = Field(default=None, ge=1, le=20)
    timestamp_granularities: list[TimestampGranularity] | None = Field(
        default=None, alias="timestamp_granularities[]", description="'word' adds word timings to verbose_json."
    )
    stream: bool | None = Field(default=None, description="Not supported: only false.")
    include: list[str] | None = Field(default=None, alias="include[]", description="Not supported: only empty.")
    chunking_strategy: str | None = Advisory(
        description="server-side chunking of gpt-4o-transcribe; Whisper chunks itself."
    )

    @field_validator("stream")
    @classmethod
    def _not_streamed(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("'stream' is not supported by this server: transcripts are answered whole; send false.")
        return value

    @field_validator("include")
    @classmethod
    def _nothing_included(cls, value: list[str] | None) -> list[str] | None:
        if value:
            raise ValueError("'include[]' is not supported by this server: token logprobs are not returned.")
        return value


class TranscriptionResponse(BaseModel):
    text: str


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float
    probability: float | None = None


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float
    words: list[TranscriptionWord] | None = None


class VerboseTranscriptionResponse(BaseModel):
    task: Literal["transcribe", "translate"]
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment]
    words: list[TranscriptionWord] | None = None
