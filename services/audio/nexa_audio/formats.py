"""A transcript in each `response_format`: json, text, verbose_json, srt and vtt."""

from __future__ import annotations

from fastapi.responses import JSONResponse, PlainTextResponse, Response

from nexa_common.schemas.audio import (
    AudioResponseFormat,
    TranscriptionResponse,
    TranscriptionSegment,
    VerboseTranscriptionResponse,
)

from .engine import Task, Transcript


def timestamp(seconds: float, decimal: str) -> str:
    """`HH:MM:SS,mmm` (SRT) or `HH:MM:SS.mmm` (WebVTT)."""
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal}{millis:03d}"


def _cues(segments: list[TranscriptionSegment], decimal: str) -> list[str]:
    return [
        f"{timestamp(s.start, decimal)} --> {timestamp(s.end, decimal)}\n{s.text.strip()}\n"
        for s in segments
        if s.text.strip()
    ]


def srt(segments: list[TranscriptionSegment]) -> str:
    return "\n".join(f"{i}\n{cue}" for i, cue in enumerate(_cues(segments, ","), start=1))


def vtt(segments: list[TranscriptionSegment]) -> str:
    return "WEBVTT\n\n" + "\n".join(_cues(segments, "."))


def render(
    transcript: Transcript, response_format: AudioResponseFormat, task: Task, words: bool, headers: dict[str, str]
) -> Response:
    if response_format == "text":
        return PlainTextResponse(transcript.text + "\n" if transcript.text else "", headers=headers)
    if response_format == "srt":
        return PlainTextResponse(srt(transcript.segments), headers=headers)
    if response_format == "vtt":
        return Response(vtt(transcript.segments), media_type="text/vtt; charset=utf-8", headers=headers)
    if response_format == "verbose_json":
        body = VerboseTranscriptionResponse(
            task=task,
            language=transcript.language,
            duration=round(transcript.duration, 3),
            text=transcript.text,
            # Words are listed once, at the top level, as OpenAI does.
            segments=[s.model_copy(update={"words": None}) for s in transcript.segments],
            words=transcript.words if words else None,
        )
        return JSONResponse(body.model_dump(exclude_none=True), headers=headers)
    return JSONResponse(TranscriptionResponse(text=transcript.text).model_dump(), headers=headers)
