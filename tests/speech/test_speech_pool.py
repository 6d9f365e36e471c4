"""A voice is one more model of the audio service's pool: served beside Whisper by one process, loaded
on its first speech request, unloaded (its memory given back) like any model, and refused on the
transcription routes as Whisper is on the speech route."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from speech_helpers import JFK, decoded, differing_words
from support import router_spec, service_spec, start_ready

from nexa_cli.supervisor import Child, Supervisor

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def pool_supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    with Supervisor(tmp_path_factory.mktemp("speech-pool-logs")) as supervisor:
        yield supervisor


@pytest.fixture(scope="module")
def audio(pool_supervisor: Supervisor) -> Child:
    """`nexa server whisper-tiny.en piper-joe`'s audio service: Whisper the default, the voice on demand,
    nothing unloaded for being idle (so what this module sees is what its requests did)."""
    env = {"NEXA_AUDIO_MODEL": "whisper-tiny.en", "NEXA_AUDIO_MODELS": "piper-joe", "NEXA_AUDIO_KEEP_ALIVE": "-1",
           "NEXA_AUDIO_THREADS": "1"}  # fmt: skip
    child = pool_supervisor.start(service_spec("audio", env, name="audio-pool"))
    pool_supervisor.wait_ready(child, 180)
    return child


@pytest.fixture(scope="module")
def routed(pool_supervisor: Supervisor, audio: Child) -> Iterator[httpx.Client]:
    url = start_ready(pool_supervisor, router_spec({"audio": audio.spec.url}, name="speech-pool-router"))
    with httpx.Client(base_url=url, timeout=120) as client:
        yield client


def _cards(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {card["id"]: card for card in client.get("/v1/models").json()["data"]}


def _loaded(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {m["id"]: m for m in client.get("/v1/operator/models").json()["data"]}


def _rss(child: Child) -> int:
    return int(psutil.Process(child.process.pid).memory_info().rss)


def test_whisper_and_a_voice_are_served_by_one_audio_service_the_voice_loaded_on_its_first_request(
    routed: httpx.Client, audio: Child, shared_data: Path
) -> None:
    cards = _cards(routed)
    assert cards["whisper-tiny.en"]["capabilities"] == ["transcription", "translation"]
    assert cards["piper-joe"]["capabilities"] == ["speech"]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts"} <= set(cards["piper-joe"]["aliases"])  # type: ignore[arg-type]
    assert (cards["whisper-tiny.en"]["state"], cards["piper-joe"]["state"]) == ("loaded", "available")
    assert set(_loaded(routed)) == {"whisper-tiny.en"}

    spoken = routed.post("/v1/audio/speech", json={"model": "tts-1", "input": JFK, "response_format": "wav"})
    assert spoken.status_code == 200, spoken.text
    assert decoded(spoken.content, "wav")[1] > 2
    voice = _loaded(routed)["piper-joe"]
    assert voice["state"] == "loaded" and int(voice["memory_bytes"]) > 64 * MIB  # type: ignore[call-overload]
    assert _cards(routed)["piper-joe"]["state"] == "loaded"
    # The same process's Whisper understands it.
    heard = routed.post(
        "/v1/audio/transcriptions", files={"file": ("s.wav", spoken.content)}, data={"model": "whisper-1"}
    )
    assert heard.status_code == 200 and differing_words(JFK, heard.json()["text"]) <= 1, heard.text
    assert _loaded(routed)["whisper-tiny.en"]["state"] == "loaded"


def test_unloading_the_voice_gives_its_memory_back_and_it_loads_again_on_demand(
    routed: httpx.Client, audio: Child
) -> None:
    assert routed.post("/v1/operator/models/unload", json={"model": "piper-joe"}).status_code == 200
    unloaded = _rss(audio)  # Whisper runs in a worker process: the service's own memory is mostly the voice's
    assert routed.post("/v1/operator/models/load", json={"model": "piper-joe"}).status_code == 200
    spoken = routed.post("/v1/audio/speech", json={"input": "Hello there.", "response_format": "pcm"})
    assert spoken.status_code == 200, spoken.text
    loaded = _rss(audio)
    grew = loaded - unloaded
    assert grew > 64 * MIB, f"a loaded voice should take memory: {grew / MIB:.0f} MiB"
    answer = routed.post("/v1/operator/models/unload", json={"model": "piper-joe"})
    assert answer.status_code == 200, answer.text
    assert "piper-joe" not in _loaded(routed)
    assert _cards(routed)["piper-joe"]["state"] == "available"
    kept = _rss(audio) - unloaded
    # In-process, the heap is trimmed on unload: most of what the load took goes back to the system.
    assert kept < grew / 2, f"unloading kept {kept / MIB:.0f} of the {grew / MIB:.0f} MiB the voice took"
    again = routed.post("/v1/audio/speech", json={"model": "piper-joe", "input": "Again.", "response_format": "pcm"})
    assert again.status_code == 200 and len(again.content) > 0


def test_an_unknown_voice_is_refused_without_loading_the_voice(routed: httpx.Client) -> None:
    assert routed.post("/v1/operator/models/unload", json={"model": "piper-joe"}).status_code == 200
    # The last request may still be closing its stream: the unload then happens as it lets go.
    deadline = time.monotonic() + 30
    while "piper-joe" in _loaded(routed):
        assert time.monotonic() < deadline, "the voice was not unloaded"
        time.sleep(0.1)
    answer = routed.post("/v1/audio/speech", json={"model": "piper-joe", "input": "Hi.", "voice": "nobody"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "voice", answer.text
    assert "alloy" in answer.json()["error"]["message"]
    assert _cards(routed)["piper-joe"]["state"] == "available"  # checked against its config file, not loaded


@pytest.mark.parametrize("model", ["whisper-tiny.en", "whisper-1"])
def test_a_whisper_model_on_the_speech_route_names_the_transcription_route(routed: httpx.Client, model: str) -> None:
    answer = routed.post("/v1/audio/speech", json={"model": model, "input": "Hi."})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["param"]) == ("model_wrong_route", "model")
    assert "/v1/audio/transcriptions" in error["message"]


@pytest.mark.parametrize("model", ["piper-joe", "gpt-4o-mini-tts"])
def test_a_voice_on_the_transcription_route_names_the_speech_route(
    routed: httpx.Client, shared_data: Path, model: str
) -> None:
    audio = (shared_data / "jfk.flac").read_bytes()
    answer = routed.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)}, data={"model": model})
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["code"] == "model_wrong_route" and "/v1/audio/speech" in error["message"]


def test_a_service_given_no_voice_says_so_and_how(pool_supervisor: Supervisor) -> None:
    env = {"NEXA_AUDIO_MODEL": "whisper-tiny.en", "NEXA_AUDIO_MODELS": "", "NEXA_AUDIO_STRICT_FIELDS": "true"}
    url = start_ready(pool_supervisor, service_spec("audio", env, name="audio-no-voice"))
    with httpx.Client(base_url=url, timeout=60) as http:
        assert [card["id"] for card in http.get("/v1/models").json()["data"]] == ["whisper-tiny.en"]
        for body in ({"input": "Hi."}, {"input": "Hi.", "model": "tts-1"}):
            answer = http.post("/v1/audio/speech", json=body)
            assert answer.status_code == 404, answer.text
            error = answer.json()["error"]
            assert error["code"] == "model_not_found" and "NEXA_AUDIO_MODELS" in error["message"], error
        # Strict field checking: an unknown field is a 400 naming it, before anything else.
        answer = http.post("/v1/audio/speech", json={"input": "Hi.", "model": "tts-1", "vibe": "calm"})
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "unknown_field"
        assert "vibe" in answer.json()["error"]["message"]
