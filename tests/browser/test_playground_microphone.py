"""Recording from the microphone (MediaRecorder) in the Audio tab. Chromium's fake capture device
plays jfk.flac (as WAV) into the page as if spoken into a microphone; the recording the page
makes (WebM/Opus) is uploaded and transcribed by the real audio service."""

from __future__ import annotations

import time
from pathlib import Path

import av
import pytest
from browser_helpers import Page
from support import normalise

# jfk.flac lasts 11 s; the recording runs a little longer so the last words are in it.
RECORD_S = 12.5


@pytest.fixture
def browser_flags(shared_data: Path, tmp_path: Path) -> tuple[str, ...]:
    wav = tmp_path / "jfk.wav"
    with av.open(str(shared_data / "jfk.flac")) as source, av.open(str(wav), "w", format="wav") as out:
        stream = out.add_stream("pcm_s16le", rate=16_000, layout="mono")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        for frame in source.decode(audio=0):
            for chunk in resampler.resample(frame):
                out.mux(stream.encode(chunk))
        out.mux(stream.encode(None))
    return (
        "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}%noloop",
    )


def test_a_recording_is_transcribed(page: Page, router_url: str) -> None:
    page.open(router_url, "audio")
    page.wait(lambda: page.options("#audio-model").get("whisper-tiny.en"), 60)
    assert page.find("#audio-record").is_enabled(), page.text("#audio-record-note")
    page.find("#audio-record").click()
    page.wait(lambda: "Recording" in page.text("#audio-record-note"), 10, "recording did not start")
    time.sleep(RECORD_S)
    page.find("#audio-record").click()
    page.wait(lambda: "Recorded" in page.text("#audio-record-note"), 10, "recording did not stop")
    assert "audio/webm" in page.text("#audio-record-note") or "audio/ogg" in page.text("#audio-record-note")
    page.find("#audio-submit").click()
    page.wait(lambda: page.js("return document.getElementById('audio-result').dataset.format") == "json"
              or page.visible("#audio-error"), 180, "no transcript")  # fmt: skip
    assert not page.visible("#audio-error"), page.text("#audio-error")
    heard = normalise(page.text("#audio-result"))
    assert "ask not what your country can do for you" in heard, heard
    assert "recording" in page.text("#audio-result")
