"""Audio in the browser against the real router and audio service (whisper-tiny.en)."""

from __future__ import annotations

import re
from pathlib import Path

from browser_helpers import Page
from support import JFK_SENTENCE, normalise


def transcribe(page: Page, router_url: str, audio: Path, response_format: str, task: str = "transcriptions") -> str:
    page.open(router_url, "audio")
    page.wait(lambda: page.options("#audio-model").get("whisper-tiny.en"), 60, "whisper-tiny.en not offered")
    page.find("#audio-file").send_keys(str(audio))
    page.choose("#audio-task", task)
    page.choose("#audio-format", response_format)
    page.find("#audio-submit").click()
    page.wait(lambda: page.js("return document.getElementById('audio-result').dataset.format") == response_format
              or page.visible("#audio-error"), 180, "no transcript appeared")  # fmt: skip
    assert not page.visible("#audio-error"), page.text("#audio-error")
    return page.text("#audio-result")


def test_uploading_jfk_shows_the_sentence(page: Page, router_url: str, shared_data: Path) -> None:
    shown = transcribe(page, router_url, shared_data / "jfk.flac", "json")
    assert normalise(JFK_SENTENCE) in normalise(shown), shown
    assert "jfk.flac · answered in" in shown


def test_verbose_format_shows_timestamped_segments(page: Page, router_url: str, shared_data: Path) -> None:
    transcribe(page, router_url, shared_data / "jfk.flac", "verbose_json")
    rows = page.js(
        "return [...document.querySelectorAll('#audio-result table.segments tbody tr')]"
        ".map(r => [...r.cells].map(c => c.textContent))"
    )
    assert rows, "no segments listed"
    for time_range, _ in rows:
        assert re.fullmatch(r"\d\d:\d\d\.\d\d → \d\d:\d\d\.\d\d", time_range), time_range
    assert normalise(JFK_SENTENCE) in normalise(" ".join(text for _, text in rows))
    assert "language en" in page.text("#audio-result")


def test_srt_format_shows_subtitles(page: Page, router_url: str, shared_data: Path) -> None:
    shown = transcribe(page, router_url, shared_data / "jfk.flac", "srt")
    assert re.search(r"^1\n00:00:\d\d,\d{3} --> 00:00:\d\d,\d{3}$", shown, re.MULTILINE), shown


def test_translate_answers_in_english(page: Page, router_url: str, shared_data: Path) -> None:
    shown = transcribe(page, router_url, shared_data / "jfk.flac", "text", task="translations")
    assert "ask not what your country can do for you" in normalise(shown)


def test_speech_is_offered_only_when_a_speech_model_is_listed(page: Page, router_url: str) -> None:
    page.open(router_url, "audio")
    page.wait(lambda: page.options("#audio-model"), 60, "no models listed")
    cards = page.js("return fetch('v1/models').then(r => r.json()).then(b => b.data)")
    speech = [c["id"] for c in cards if "speech" in (c.get("capabilities") or [])]
    if speech:
        assert page.visible("#speech-controls")
        assert set(page.options("#speech-model")) >= set(speech)
    else:
        assert not page.visible("#speech-controls")
        assert "no speech model" in page.text("#speech-note")
