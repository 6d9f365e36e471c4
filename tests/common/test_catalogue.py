"""The model catalogue: every kind of source, unknown names, the offline hub error."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from nexa_common import catalogue
from nexa_common.catalogue import Backend, Modality, ModelNotAvailable, UnknownModel


def test_wheel_models_resolve_to_files_inside_installed_wheels(tmp_path: Path) -> None:
    text = catalogue.resolve("smollm2", tmp_path)
    assert text.entry.modality is Modality.TEXT and text.entry.backend is Backend.GGUF
    assert text.path.is_file() and text.path.suffix == ".gguf"
    assert text.path.read_bytes()[:4] == b"GGUF"
    audio = catalogue.resolve("whisper-tiny.en", tmp_path)
    assert audio.entry.modality is Modality.AUDIO and audio.entry.english_only
    assert (audio.path / "model.bin").is_file() and (audio.path / "config.json").is_file()


def test_seed_names_and_the_seed_typo_are_in_the_catalogue() -> None:
    for name in ("gemma", "llama2-function-calling", "sd1-5", "faster-whisper-large", "faster-whipser-large"):
        entry = catalogue.lookup(name)
        assert entry is not None, name
        assert isinstance(entry.source, catalogue.HubSource)
    assert catalogue.lookup("faster-whipser-large") == catalogue.lookup("faster-whisper-large")
    assert catalogue.lookup("sd1-5").modality is Modality.IMAGE  # type: ignore[union-attr]


def test_hub_model_missing_offline_fails_at_once_naming_model_source_and_remedy(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable) as info:
        catalogue.resolve("gemma", tmp_path)
    message = str(info.value)
    assert "'gemma'" in message
    assert "bartowski/gemma-2-2b-it-GGUF" in message
    assert "nexa pull gemma" in message and "local path" in message


def test_hub_model_present_in_cache_resolves_without_network(tmp_path: Path) -> None:
    entry = catalogue.lookup("faster-whisper-large")
    assert entry is not None
    folder = catalogue.cache_path(entry, tmp_path)
    folder.mkdir(parents=True)
    resolved = catalogue.resolve("faster-whipser-large", tmp_path)
    assert resolved.path == folder and resolved.name == "faster-whisper-large"


def test_built_model_not_built_yet_says_how_to_build(tmp_path: Path) -> None:
    with pytest.raises(ModelNotAvailable, match="nexa pull tiny-sd"):
        catalogue.resolve("tiny-sd", tmp_path)


def test_local_paths_are_recognised_by_layout(tmp_path: Path) -> None:
    gguf = catalogue.resolve("smollm2", tmp_path).path
    local_gguf = tmp_path / "my-model.gguf"
    shutil.copyfile(gguf, local_gguf)
    resolved = catalogue.resolve(str(local_gguf), tmp_path)
    assert resolved.entry.modality is Modality.TEXT and resolved.path == local_gguf.resolve()

    whisper = catalogue.resolve("whisper-tiny.en", tmp_path).path
    local_whisper = tmp_path / "whisper"
    shutil.copytree(whisper, local_whisper)
    entry = catalogue.find(str(local_whisper))
    assert entry.modality is Modality.AUDIO and entry.backend is Backend.CT2

    diffusers_dir = tmp_path / "sd"
    diffusers_dir.mkdir()
    (diffusers_dir / "model_index.json").write_text("{}")
    assert catalogue.find(str(diffusers_dir)).backend is Backend.DIFFUSERS

    checkpoint = tmp_path / "model.safetensors"
    checkpoint.write_bytes(b"\0")
    assert catalogue.find(str(checkpoint)).modality is Modality.IMAGE


def test_unknown_names_and_unrecognised_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnknownModel, match="nexa list"):
        catalogue.resolve("no-such-model", tmp_path)
    stray = tmp_path / "notes.txt"
    stray.write_text("hello")
    with pytest.raises(UnknownModel, match="Cannot tell what kind of model"):
        catalogue.resolve(str(stray), tmp_path)
