"""Voices as models: the catalogue's piper-joe and its aliases, another Piper voice from a local path,
hub voices that say how to get them offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest
from speech_helpers import JFK, decoded, differing_words
from support import service_spec, start_ready

from nexa_cli.supervisor import Supervisor
from nexa_common import catalogue
from nexa_common.catalogue import Backend, Modality, ModelNotAvailable


def test_piper_joe_ships_in_its_wheel_and_the_openai_names_are_its_aliases(tmp_path: Path) -> None:
    voice = catalogue.resolve("piper-joe", tmp_path)
    assert voice.entry.modality is Modality.AUDIO and voice.entry.backend is Backend.PIPER
    assert voice.path.suffix == ".onnx" and catalogue.piper_config(voice.path).is_file()
    for alias in ("tts-1", "tts-1-hd", "gpt-4o-mini-tts"):
        assert catalogue.lookup(alias) == voice.entry


def test_hub_voices_offline_fail_at_once_saying_how_to_pull(tmp_path: Path) -> None:
    for name in ("piper-lessac", "piper-libritts"):
        with pytest.raises(ModelNotAvailable, match=f"nexa pull {name}") as info:
            catalogue.resolve(name, tmp_path)
        assert "rhasspy/piper-voices" in str(info.value)


def test_a_hub_voice_copied_into_the_cache_resolves_without_network(tmp_path: Path) -> None:
    entry = catalogue.lookup("piper-lessac")
    assert entry is not None
    joe = catalogue.resolve("piper-joe", tmp_path).path
    target = catalogue.cache_path(entry, tmp_path)  # where `nexa pull` puts it: the repo's own layout
    assert target.name == "en_US-lessac-medium.onnx"
    target.parent.mkdir(parents=True)
    shutil.copyfile(joe, target)
    shutil.copyfile(catalogue.piper_config(joe), catalogue.piper_config(target))
    assert catalogue.resolve("piper-lessac", tmp_path).path == target


def test_every_alias_speaks_with_the_default_voice(router: httpx.Client) -> None:
    for model in ("piper-joe", "tts-1", "tts-1-hd", "gpt-4o-mini-tts", None):
        body = {"input": "Hello.", "response_format": "pcm", **({"model": model} if model else {})}
        response = router.post("/v1/audio/speech", json=body)
        assert response.status_code == 200, (model, response.text)


@pytest.fixture(scope="module")
def local_voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Piper voice as a user has one: VOICE.onnx and VOICE.onnx.json in a folder of their own."""
    joe = catalogue.resolve("piper-joe", tmp_path_factory.mktemp("unused")).path
    folder = tmp_path_factory.mktemp("my-voice")
    shutil.copyfile(joe, folder / "en_US-myvoice-medium.onnx")
    shutil.copyfile(catalogue.piper_config(joe), folder / "en_US-myvoice-medium.onnx.json")
    return folder / "en_US-myvoice-medium.onnx"


def test_a_local_voice_is_recognised_by_its_config_beside_it(local_voice: Path) -> None:
    for path in (local_voice, local_voice.parent):
        entry = catalogue.find(str(path))
        assert (entry.modality, entry.backend) == (Modality.AUDIO, Backend.PIPER)
    assert catalogue.find(str(local_voice.parent)).source == catalogue.LocalSource(local_voice.resolve())


def test_a_local_voice_is_served_and_understood(supervisor: Supervisor, local_voice: Path) -> None:
    env = {"NEXA_AUDIO_MODEL": "whisper-tiny.en", "NEXA_AUDIO_MODELS": str(local_voice)}
    url = start_ready(supervisor, service_spec("audio", env, name="audio-local-voice"))
    with httpx.Client(base_url=url, timeout=120) as http:
        ids = [card["id"] for card in http.get("/v1/models").json()["data"]]
        assert ids == ["whisper-tiny.en", local_voice.name]
        spoken = http.post("/v1/audio/speech", json={"input": JFK, "model": local_voice.name, "response_format": "wav"})
        assert spoken.status_code == 200, spoken.text
        assert spoken.headers["x-nexa-voice"] == "joe"  # the config's dataset names the speaker
        assert decoded(spoken.content, "wav")[1] > 2
        heard = http.post("/v1/audio/transcriptions", files={"file": ("a.wav", spoken.content)}).json()["text"]
    assert differing_words(JFK, heard) <= 1, heard


def test_a_voice_that_cannot_be_served_says_why_and_whisper_still_serves(
    supervisor: Supervisor, tmp_path: Path, shared_data: Path
) -> None:
    missing = tmp_path / "nowhere.onnx"
    spec = service_spec("audio", {"NEXA_AUDIO_MODELS": str(missing)}, name="audio-missing-voice")
    url = start_ready(supervisor, spec)  # ready: its default, Whisper, loaded
    with httpx.Client(base_url=url, timeout=60) as http:
        # Without `model`, speech would get the first voice: there is none that can be served, and it says why.
        spoken = http.post("/v1/audio/speech", json={"input": "Hello."})
        assert spoken.status_code == 404 and spoken.json()["error"]["code"] == "model_not_found"
        assert "no speech model" in spoken.json()["error"]["message"]
        assert "nowhere.onnx" in spoken.json()["error"]["message"]
        # Named, it is a 503 with the reason (the operator's mistake, not the client's).
        spoken = http.post("/v1/audio/speech", json={"input": "Hello.", "model": "nowhere.onnx"})
        assert spoken.status_code == 503 and spoken.json()["error"]["code"] == "model_failed"
        audio = (shared_data / "jfk.flac").read_bytes()
        heard = http.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)})
        assert heard.status_code == 200 and "country" in heard.json()["text"]
