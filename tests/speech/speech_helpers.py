"""Decoding what /v1/audio/speech answers, comparing transcripts, and reading the service's metrics."""

from __future__ import annotations

import difflib
import io
import re

import av
import httpx

JFK = "And so my fellow Americans, ask not what your country can do for you"
FIVE_SENTENCES = (
    "The first sentence is about the weather, which was fine all day. "
    "The second sentence talks about a walk along the river in the morning. "
    "The third sentence describes the old bridge and the boats below it. "
    "The fourth sentence is about lunch in a small cafe near the market. "
    "The fifth sentence ends the story with a quiet evening at home."
)
# Format -> the sample rate its bytes decode at (Opus always decodes at 48 kHz; the rest keep the voice's).
VOICE_RATE = 22_050
RATES = {"mp3": VOICE_RATE, "opus": 48_000, "aac": VOICE_RATE, "flac": VOICE_RATE, "wav": VOICE_RATE, "pcm": VOICE_RATE}


def decoded(data: bytes, response_format: str, pcm_rate: int = VOICE_RATE) -> tuple[int, float]:
    """(sample rate, seconds) of the audio, counted from the decoded samples, not from any header."""
    if response_format == "pcm":
        assert len(data) % 2 == 0, "16-bit samples"
        return pcm_rate, len(data) / 2 / pcm_rate
    samples, rate = 0, 0
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            samples += frame.samples
            rate = frame.sample_rate
    assert rate, "no audio frames decoded"
    return rate, samples / rate


def words(text: str) -> list[str]:
    # A contraction is one spoken word: "that's" heard for "ask" is one word wrong, not two.
    return re.sub(r"[^\w\s]", " ", re.sub(r"['\u2019]", "", text.lower())).split()


def differing_words(expected: str, heard: str) -> int:
    """Words substituted, missing or added between two transcripts."""
    a, b = words(expected), words(heard)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return sum(max(i2 - i1, j2 - j1) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal")


def metric(service: httpx.Client, name: str, labels: str = "") -> float:
    """A sample's value from the service's /metrics (0 while it has never been set)."""
    pattern = re.compile(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", re.MULTILINE)
    found = pattern.search(service.get("/metrics").text)
    return float(found.group(1)) if found else 0.0


SENTENCES = "nexa_audio_speech_sentences_total"
CANCELLED = ("nexa_audio_requests_total", '{outcome="cancelled",task="speech"}')
