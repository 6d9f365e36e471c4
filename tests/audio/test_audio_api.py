"""The audio service's API with the real whisper-tiny.en model, over real HTTP."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import openai
import pytest
from audio_helpers import FORMATS, JFK_SENTENCE, encode, load, normalise, silence_wav

EXPECTED = normalise(JFK_SENTENCE)
SRT_TIMING = re.compile(r"^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$")
VTT_TIMING = re.compile(r"^\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}$")


def seconds(stamp: str) -> float:
    hours, minutes, rest = stamp.replace(",", ".").split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(rest)


@pytest.fixture(scope="module")
def jfk(shared_data: Path) -> bytes:
    return (shared_data / "jfk.flac").read_bytes()


@pytest.fixture(scope="module")
def http(audio_url: str):  # type: ignore[no-untyped-def]
    with httpx.Client(base_url=audio_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def client(audio_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{audio_url}/v1", api_key="unused", max_retries=0, timeout=120)


def transcribe(
    http: httpx.Client,
    audio: bytes,
    path: str = "/v1/audio/transcriptions",
    name: str = "a.flac",
    params: dict | None = None,
    **fields: object,
) -> httpx.Response:
    return http.post(path, files={"file": (name, audio)}, data=fields, params=params)


def assert_up(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").status_code == 200


def assert_error(response: httpx.Response, status: int, *words: str) -> dict:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word.lower() in error["message"].lower(), error["message"]
    return error


def test_ready_models_and_metrics(http: httpx.Client) -> None:
    assert http.get("/ready").json() == {"status": "ready", "model": "whisper-tiny.en"}
    cards = http.get("/v1/models").json()["data"]
    # The Piper voice of /v1/audio/speech is served beside the Whisper model.
    assert [(c["id"], c["modality"], c["backend"]) for c in cards] == [
        ("whisper-tiny.en", "audio", "ct2"),
        ("piper-joe", "audio", "piper"),
    ]
    metrics = http.get("/metrics").text
    for name in (
        "nexa_audio_requests",
        "nexa_audio_processed_seconds",
        "nexa_audio_real_time_factor",
        "nexa_audio_queue_depth",
    ):
        assert f"# TYPE {name}" in metrics


def test_jfk_multipart_seed_query_parameters(http: httpx.Client, jfk: bytes) -> None:
    response = transcribe(http, jfk, params={"beam_size": 5, "temperature": 0, "language": "en"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert normalise(response.json()["text"]) == EXPECTED
    metrics = http.get("/metrics").text
    assert re.search(r'^nexa_audio_requests_total\{outcome="ok",task="transcribe"\} [1-9]', metrics, re.M)
    assert re.search(r"^nexa_audio_real_time_factor_count [1-9]", metrics, re.M)


def test_openai_client_transcription(client: openai.OpenAI, shared_data: Path) -> None:
    with (shared_data / "jfk.flac").open("rb") as audio:
        result = client.audio.transcriptions.create(model="whisper-1", file=audio, language="en", temperature=0)
    assert normalise(result.text) == EXPECTED


def test_openai_client_translation_is_transcribed_with_notice(client: openai.OpenAI, shared_data: Path) -> None:
    with (shared_data / "jfk.flac").open("rb") as audio:
        raw = client.audio.translations.with_raw_response.create(model="whisper-1", file=audio)
    notice = raw.headers["x-nexa-notice"]
    assert "english-only" in notice.lower() and "not translated" in notice
    assert normalise(raw.parse().text) == EXPECTED


def test_openai_client_verbose_json_with_words(client: openai.OpenAI, shared_data: Path) -> None:
    with (shared_data / "jfk.flac").open("rb") as audio:
        result = client.audio.transcriptions.create(
            model="whisper-1", file=audio, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert normalise(result.text) == EXPECTED
    assert result.language == "en"
    assert result.duration == pytest.approx(11.0, abs=0.1)
    assert result.segments
    for segment in result.segments:
        assert 0 <= segment.start < segment.end <= result.duration
    assert result.words and normalise(" ".join(w.word for w in result.words)) == EXPECTED
    for word in result.words:
        assert 0 <= word.start <= word.end <= result.duration


@pytest.mark.parametrize("response_format", ["json", "text", "srt", "vtt", "verbose_json"])
def test_every_response_format_parses_as_claimed(http: httpx.Client, jfk: bytes, response_format: str) -> None:
    response = transcribe(http, jfk, response_format=response_format)
    assert response.status_code == 200, response.text
    body = response.text
    if response_format == "json":
        assert normalise(json.loads(body)["text"]) == EXPECTED
    elif response_format == "text":
        assert response.headers["content-type"].startswith("text/plain")
        assert normalise(body) == EXPECTED
    elif response_format == "verbose_json":
        verbose = json.loads(body)
        assert verbose["task"] == "transcribe" and verbose["language"] == "en"
        assert normalise(verbose["text"]) == EXPECTED
        assert "words" not in verbose  # only when timestamp_granularities asks for them
        assert [s["id"] for s in verbose["segments"]] == list(range(len(verbose["segments"])))
        for segment in verbose["segments"]:
            assert 0 <= segment["start"] < segment["end"] <= verbose["duration"]
    else:
        timing = SRT_TIMING if response_format == "srt" else VTT_TIMING
        if response_format == "vtt":
            assert response.headers["content-type"].startswith("text/vtt")
            assert body.startswith("WEBVTT\n\n")
            body = body.removeprefix("WEBVTT\n\n")
        cues = [cue.splitlines() for cue in body.strip().split("\n\n")]
        assert cues
        texts, previous_end = [], 0.0
        for number, cue in enumerate(cues, start=1):
            if response_format == "srt":
                assert cue[0] == str(number)
                cue = cue[1:]
            assert timing.match(cue[0]), cue[0]
            start, end = (seconds(s) for s in cue[0].split(" --> "))
            assert previous_end <= start < end <= 11.0
            previous_end = end
            texts += cue[1:]
        assert normalise(" ".join(texts)) == EXPECTED


@pytest.mark.parametrize("extension", sorted(FORMATS))
def test_other_containers_give_the_same_text(http: httpx.Client, shared_data: Path, extension: str) -> None:
    container, codec = FORMATS[extension]
    audio = encode(load(shared_data / "jfk.flac"), container, codec)
    assert load(audio).size > 10 * 16_000  # the conversion really holds the speech
    response = transcribe(http, audio, name=f"jfk.{extension}")
    assert response.status_code == 200, response.text
    assert normalise(response.json()["text"]) == EXPECTED


def test_garbage_is_400_and_the_service_stays_up(http: httpx.Client, jfk: bytes) -> None:
    error = assert_error(transcribe(http, b"this is not audio at all" * 100, name="a.mp3"), 400, "not decodable audio")
    assert error["param"] == "file"
    assert "/" not in error["message"].replace("multipart/form-data", "")  # no paths leak
    assert_error(transcribe(http, b"fLaC" + bytes(64)), 400, "not decodable")  # a header, then nothing
    assert_up(http)
    assert normalise(transcribe(http, jfk).json()["text"]) == EXPECTED


def test_empty_and_silent_audio_give_empty_text(http: httpx.Client) -> None:
    for audio in (b"", silence_wav(3.0)):
        response = transcribe(http, audio, name="silence.wav", response_format="verbose_json")
        assert response.status_code == 200, response.text
        assert response.json()["text"] == ""
        assert response.json()["segments"] == []
    assert transcribe(http, silence_wav(1.0), response_format="srt").text == ""


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_non_english_language_needs_a_multilingual_model(http: httpx.Client, jfk: bytes, path: str) -> None:
    for response in (
        transcribe(http, jfk, path, language="fr"),
        transcribe(http, jfk, path, params={"language": "de"}),
    ):
        error = assert_error(response, 400, "english-only", "multilingual")
        assert error["param"] == "language"
    assert_up(http)


def test_form_field_wins_over_query_parameter(http: httpx.Client, jfk: bytes) -> None:
    # Query says French (which this model refuses), the form says English: the form wins.
    response = transcribe(http, jfk, params={"language": "fr"}, language="en")
    assert response.status_code == 200, response.text
    assert normalise(response.json()["text"]) == EXPECTED
    # And the other way round: a French form field is refused even with an English query parameter.
    assert_error(transcribe(http, jfk, params={"language": "en"}, language="fr"), 400, "english-only")
    # Query parameters are validated too.
    assert_error(transcribe(http, jfk, params={"beam_size": 0}), 400, "beam_size")


def test_bad_requests_name_the_problem(http: httpx.Client, jfk: bytes) -> None:
    assert assert_error(transcribe(http, jfk, temperature="3"), 400, "temperature")["param"] == "temperature"
    assert_error(transcribe(http, jfk, response_format="mp4"), 400, "response_format")
    missing = http.post("/v1/audio/transcriptions", files={"audio": ("a.flac", jfk)})
    assert assert_error(missing, 400, "'file'")["param"] == "file"
    assert_error(http.post("/v1/audio/transcriptions", json={"file": "x"}), 400, "multipart/form-data")
    assert_up(http)
