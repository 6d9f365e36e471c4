"""Subtitle formats of a transcript: SRT and WebVTT timestamps and cues."""

from __future__ import annotations

from nexa_audio.formats import srt, timestamp, vtt
from nexa_common.schemas.audio import TranscriptionSegment


def segment(index: int, start: float, end: float, text: str) -> TranscriptionSegment:
    return TranscriptionSegment(
        id=index, seek=0, start=start, end=end, text=text, tokens=[], temperature=0.0,
        avg_logprob=0.0, compression_ratio=1.0, no_speech_prob=0.0,
    )  # fmt: skip


def test_timestamps() -> None:
    assert timestamp(0, ",") == "00:00:00,000"
    assert timestamp(3661.5, ",") == "01:01:01,500"
    assert timestamp(59.9996, ".") == "00:01:00.000"  # rounded to the millisecond, carried over
    assert timestamp(-0.2, ".") == "00:00:00.000"
    assert timestamp(360_000, ",") == "100:00:00,000"


def test_srt_numbers_cues_from_one_and_skips_empty_segments() -> None:
    segments = [segment(0, 0.0, 1.25, " Hello."), segment(1, 1.25, 2.0, "  "), segment(2, 2.0, 3.5, " World.")]
    assert srt(segments) == "1\n00:00:00,000 --> 00:00:01,250\nHello.\n\n2\n00:00:02,000 --> 00:00:03,500\nWorld.\n"


def test_vtt_has_its_header_and_dotted_milliseconds() -> None:
    assert vtt([segment(0, 0.5, 1.0, " Hi")]) == "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\nHi\n"
    assert vtt([]) == "WEBVTT\n\n"
