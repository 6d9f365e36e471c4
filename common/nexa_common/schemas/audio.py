"""Audio wire types: the form fields of /v1/audio/transcriptions and /translations, the body of
/v1/audio/speech, and the answers.

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


# --- Speech synthesis (/v1/audio/speech) ---

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
# The Content-Type of each format's answer (opus comes in Ogg pages, as OpenAI's does).
SPEECH_MEDIA_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
MAX_SPEECH_INPUT_CHARS = 4096  # OpenAI's limit


class VoiceReference(BaseModel):
    """OpenAI's custom-voice object; its `id` is looked up like a voice name."""

    id: str = Field(min_length=1, max_length=256)


class SpeechRequest(AccountedRequest):
    """OpenAI's `audio.speech.create` body. Unknown fields are accepted (and named in the ignored-fields header)."""

    model: str | None = Field(
        default=None,
        max_length=1024,
        description="A voice model (see /v1/models, capability `speech`): `piper-joe`, its aliases `tts-1`, "
        "`tts-1-hd`, `gpt-4o-mini-tts`, or another Piper voice the service serves. Absent: the service's first "
        "configured voice.",
    )
    keep_alive: KeepAlive | None = None
    input: str = Field(
        min_length=1, max_length=MAX_SPEECH_INPUT_CHARS, description="The text to speak, at most 4096 characters."
    )
    voice: str | VoiceReference | None = Field(
        default=None,
        description="An OpenAI voice name (alloy, ash, ballad, coral, echo, fable, onyx, nova, sage, shimmer, verse, "
        "marin, cedar) or a speaker of the voice model; absent: the model's first speaker.",
    )
    response_format: SpeechFormat = Field(
        default="mp3", description="pcm is raw 16-bit little-endian mono at the rate in `X-Nexa-Sample-Rate`."
    )
    speed: float = Field(default=1.0, ge=0.25, le=4.0, description="0.25 to 4.0; 2.0 takes half the time.")
    instructions: str | None = Advisory(
        max_length=MAX_SPEECH_INPUT_CHARS,
        description="Piper voices have no control of tone or style (named in `X-Nexa-Ignored-Fields` when set).",
    )
    stream_format: Literal["audio", "sse"] = Field(
        default="audio",
        description="`audio`: the file's bytes, streamed as each sentence is ready; `sse`: server-sent "
        "`speech.audio.delta` events with base64 chunks, then `speech.audio.done`.",
    )


class SpeechUsage(BaseModel):
    input_tokens: int = Field(description="Phoneme IDs read by the voice model.")
    output_tokens: int = Field(description="Audio frames the voice model produced (its hop length in samples each).")
    total_tokens: int


class SpeechAudioDelta(BaseModel):
    type: Literal["speech.audio.delta"] = "speech.audio.delta"
    audio: str = Field(description="The next bytes of the audio file, base64.")


class SpeechAudioDone(BaseModel):
    type: Literal["speech.audio.done"] = "speech.audio.done"
    usage: SpeechUsage
