"""/v1/audio/speech through the router with the real piper-joe voice, checked by the real whisper-tiny.en."""

from __future__ import annotations

import httpx
import openai
import pytest
from speech_helpers import JFK, RATES, decoded, differing_words

FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


@pytest.fixture(scope="module")
def jfk_wav(client: openai.OpenAI) -> bytes:
    return client.audio.speech.create(model="tts-1", voice="alloy", input=JFK, response_format="wav").content


def test_spoken_jfk_line_transcribes_back_within_one_word(
    client: openai.OpenAI, router: httpx.Client, jfk_wav: bytes
) -> None:
    heard = client.audio.transcriptions.create(model="whisper-tiny.en", file=("speech.wav", jfk_wav)).text
    assert differing_words(JFK, heard) <= 1, heard


@pytest.mark.parametrize("response_format", FORMATS)
def test_each_format_decodes_at_its_rate_and_lasts_as_long_as_the_wav(
    router: httpx.Client, jfk_wav: bytes, response_format: str
) -> None:
    response = router.post(
        "/v1/audio/speech",
        json={"model": "piper-joe", "input": JFK, "voice": "nova", "response_format": response_format},
    )
    assert response.status_code == 200, response.text
    assert response.headers["transfer-encoding"] == "chunked"  # streamed, not sent as one piece
    rate = int(response.headers["x-nexa-sample-rate"])
    assert rate == RATES[response_format]
    _, wav_seconds = decoded(jfk_wav, "wav")
    decoded_rate, seconds = decoded(response.content, response_format, pcm_rate=rate)
    assert decoded_rate == RATES[response_format]
    assert abs(seconds - wav_seconds) <= 0.2 * wav_seconds, (seconds, wav_seconds)


def test_each_format_has_its_content_type(router: httpx.Client) -> None:
    types = {}
    for response_format in FORMATS:
        response = router.post("/v1/audio/speech", json={"input": "Yes.", "response_format": response_format})
        assert response.status_code == 200, response.text
        types[response_format] = response.headers["content-type"]
    assert types == {
        "mp3": "audio/mpeg",
        "opus": "audio/ogg; codecs=opus",
        "aac": "audio/aac",
        "flac": "audio/flac",
        "wav": "audio/wav",
        "pcm": "audio/pcm",
    }


@pytest.mark.parametrize(("speed", "expected_ratio"), [(2.0, 0.5), (0.5, 2.0)])
def test_speed_scales_the_duration(client: openai.OpenAI, jfk_wav: bytes, speed: float, expected_ratio: float) -> None:
    faster = client.audio.speech.create(model="tts-1", voice="alloy", input=JFK, response_format="wav", speed=speed)
    _, normal = decoded(jfk_wav, "wav")
    _, seconds = decoded(faster.content, "wav")
    # Piper's own duration noise differs between two syntheses by a few percent.
    assert seconds / normal == pytest.approx(expected_ratio, rel=0.15), (seconds, normal)


def test_fast_speech_still_transcribes(client: openai.OpenAI) -> None:
    fast = client.audio.speech.create(model="tts-1", voice="alloy", input=JFK, response_format="flac", speed=1.5)
    heard = client.audio.transcriptions.create(model="whisper-tiny.en", file=("fast.flac", fast.content)).text
    assert differing_words(JFK, heard) <= 2, heard


def test_voice_names_and_ignored_fields(router: httpx.Client) -> None:
    for voice in ("alloy", "Shimmer", "joe", {"id": "cedar"}):
        response = router.post("/v1/audio/speech", json={"input": "Hello.", "voice": voice, "response_format": "pcm"})
        assert response.status_code == 200, (voice, response.text)
        assert response.headers["x-nexa-voice"] == "joe"  # piper-joe has one speaker, so every name is joe
        assert "x-nexa-ignored-fields" not in response.headers
    response = router.post(
        "/v1/audio/speech",
        json={"input": "Hello.", "instructions": "Speak like a pirate.", "vibe": "calm", "response_format": "pcm"},
    )
    assert response.status_code == 200, response.text
    # Piper has no style control: `instructions` is accepted, not honoured, and said so (and so is the unknown field).
    assert response.headers["x-nexa-ignored-fields"] == "instructions,vibe"
    assert len(response.content) > 0
    # Field names are the client's: what cannot go in a header is left out of it (found by fuzzing).
    odd = b'{"input": "Hi.", "response_format": "pcm", "\\u001f": 1, "\\u0080x": 2, "a,b": 3}'
    response = router.post("/v1/audio/speech", content=odd, headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.headers["x-nexa-ignored-fields"] == "x,ab"  # in the order sent
