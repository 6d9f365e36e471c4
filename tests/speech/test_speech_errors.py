"""Bad speech requests: 400 (or 404) with OpenAI's error body, through the router and the openai client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

CASES: dict[str, tuple[dict[str, Any], str, tuple[str, ...]]] = {
    "empty input": ({"input": ""}, "input", ()),
    "input over 4096 characters": ({"input": "a" * 4097}, "input", ("4096",)),
    "nothing to speak": ({"input": " ... !? "}, "input", ("nothing to speak",)),
    "unknown voice": ({"input": "Hi.", "voice": "nobody"}, "voice", ("nobody", "alloy", "shimmer", "joe")),
    "unknown format": ({"input": "Hi.", "response_format": "ogg"}, "response_format", ("mp3",)),
    "speed too low": ({"input": "Hi.", "speed": 0.2}, "speed", ("0.25",)),
    "speed too high": ({"input": "Hi.", "speed": 4.5}, "speed", ("4",)),
    "missing input": ({"voice": "alloy"}, "input", ()),
    "transcription model": ({"input": "Hi.", "model": "whisper-tiny.en"}, "model", ("/v1/audio/transcriptions",)),
}


def assert_error(response: httpx.Response, status: int, param: str, words: tuple[str, ...]) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    for word in words:
        assert word.lower() in error["message"].lower(), error["message"]
    return error


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_a_400_in_the_openai_error_body(router: httpx.Client, case: str) -> None:
    body, param, words = CASES[case]
    error = assert_error(router.post("/v1/audio/speech", json=body), 400, param, words)
    assert error["type"] == "invalid_request_error"


def test_transcription_model_names_its_route(router: httpx.Client) -> None:
    response = router.post("/v1/audio/speech", json={"input": "Hi.", "model": "whisper-tiny.en"})
    assert assert_error(response, 400, "model", ())["code"] == "model_wrong_route"


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_a_voice_on_the_transcription_routes_names_the_speech_route(
    router: httpx.Client, shared_data: Path, path: str
) -> None:
    audio = (shared_data / "jfk.flac").read_bytes()
    for voice in ("piper-joe", "tts-1"):
        response = router.post(path, files={"file": ("jfk.flac", audio)}, data={"model": voice})
        error = assert_error(response, 400, "model", ("/v1/audio/speech",))
        assert error["code"] == "model_wrong_route"


def test_unknown_model_is_a_404_naming_what_is_served(router: httpx.Client) -> None:
    error = assert_error(
        router.post("/v1/audio/speech", json={"input": "Hi.", "model": "no-such-voice"}), 404, "model", ("piper-joe",)
    )
    assert error["code"] == "model_not_found"


def test_the_openai_client_raises_bad_request_with_the_message(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.audio.speech.create(model="tts-1", voice="nobody", input="Hi.")
    assert "alloy" in str(info.value)
    with pytest.raises(openai.BadRequestError, match="speed"):
        client.audio.speech.create(model="tts-1", voice="alloy", input="Hi.", speed=10)


def test_a_body_that_is_not_json_is_a_400(router: httpx.Client) -> None:
    response = router.post("/v1/audio/speech", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 400 and "json" in response.json()["error"]["message"].lower()


HOSTILE_INPUTS = [
    b'"\\ud800 lone surrogate"',
    b'"nul \\u0000 inside"',
    b'"\\u202e right to left override"',
    b'"\\ud83d\\ude00\\ud83d\\ude00"',
    '"你好世界"'.encode(),
    b'"[[ \\u0283 x ]] raw phonemes"',
    b'"[["',
    b'"<speak>ssml is text here</speak>"',
    b'"' + b"9" * 400 + b'"',
    b'"' + b"a" * 4096 + b'"',
]


@pytest.mark.parametrize("text", HOSTILE_INPUTS, ids=range(len(HOSTILE_INPUTS)))
def test_odd_inputs_are_spoken_or_refused_never_a_crash(router: httpx.Client, text: bytes) -> None:
    body = b'{"response_format": "pcm", "input": ' + text + b"}"
    response = router.post("/v1/audio/speech", content=body, headers={"content-type": "application/json"})
    assert response.status_code in (200, 400), response.text
    if response.status_code == 400:
        assert response.json()["error"]["param"] == "input"
    else:
        assert len(response.content) % 2 == 0
