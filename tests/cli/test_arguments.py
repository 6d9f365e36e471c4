"""`nexa` argument parsing against the seed's usage line, and model planning."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from nexa_cli import docker_mode, local
from nexa_cli.main import build_parser, parse_server_models
from nexa_common.catalogue import Modality, ModelError


def test_seed_usage_line_and_options() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "server", "-h"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("usage: nexa server [-h] [--host HOST] [--port PORT] [--reload]")
    assert "[onnx] MODEL..." in out
    for option in ("--host", "--port", "--reload"):
        assert option in out


def test_server_arguments_parse_as_the_seed_describes() -> None:
    args = build_parser().parse_args(["server", "--host", "0.0.0.0", "--port", "9000", "--reload", "gemma"])
    assert (args.host, args.port, args.reload, args.models) == ("0.0.0.0", 9000, True, ["gemma"])
    defaults = build_parser().parse_args(["server"])
    assert (defaults.host, defaults.port, defaults.reload, defaults.models) == ("127.0.0.1", 8000, False, [])


def test_onnx_before_the_model_selects_onnx() -> None:
    assert parse_server_models(["onnx", "smollm2"]) == (True, ["smollm2"])
    assert parse_server_models(["smollm2"]) == (False, ["smollm2"])
    assert parse_server_models([]) == (False, [])


def test_bad_port_is_a_usage_error() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "server", "--port", "eighty"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "invalid int value" in result.stderr


def test_no_model_plans_the_embedded_text_and_audio_defaults_and_the_voice(tmp_path: Path) -> None:
    plan = local.plan([], cache_dir=tmp_path)
    assert plan.models == {Modality.TEXT: "smollm2", Modality.AUDIO: "whisper-tiny.en"}
    assert plan.more == {Modality.AUDIO: ["piper-joe"]}


def test_a_voice_is_one_more_model_of_the_audio_service(tmp_path: Path) -> None:
    both = local.plan(["whisper-tiny.en", "piper-joe"], cache_dir=tmp_path)
    assert (both.models, both.more) == ({Modality.AUDIO: "whisper-tiny.en"}, {Modality.AUDIO: ["piper-joe"]})
    (audio,) = local.service_specs(both, reload=False, n_ctx=None)
    assert (audio.env["NEXA_AUDIO_MODEL"], audio.env["NEXA_AUDIO_MODELS"]) == ("whisper-tiny.en", "piper-joe")
    # A voice alone is the audio service's default (speech only); no Whisper model is added behind the user's back.
    alone = local.plan(["tts-1"], cache_dir=tmp_path)
    assert (alone.models, alone.more) == ({Modality.AUDIO: "tts-1"}, {})
    assert docker_mode.plan(["piper-joe", "whisper-tiny.en"], onnx=False) == {
        Modality.AUDIO: ["piper-joe", "whisper-tiny.en"]
    }


def test_several_models_of_a_modality_share_its_service_the_first_being_its_default(tmp_path: Path) -> None:
    gguf = tmp_path / "other.gguf"
    gguf.write_bytes(b"GGUF")
    plan = local.plan(["smollm2", str(gguf), "whisper-tiny.en", "smollm2"], cache_dir=tmp_path)
    assert plan.models == {Modality.TEXT: "smollm2", Modality.AUDIO: "whisper-tiny.en"}
    assert plan.more == {Modality.TEXT: [str(gguf)]}
    with pytest.raises(ModelError):
        local.plan(["smollm2", "no-such-model"], cache_dir=tmp_path)


def test_missing_hub_model_fails_before_anything_starts(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "server", "--local", "faster-whipser-large"],
        capture_output=True,
        text=True,
        env={"NEXA_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 2
    assert "faster-whisper-large" in result.stderr and "Systran/faster-whisper-large-v3" in result.stderr


def test_pull_from_an_unreachable_hub_fails_fast_with_the_remedy(tmp_path: Path) -> None:
    # A closed local port stands for "no hub reachable" whatever network the test machine has.
    from nexa_cli.supervisor import free_port

    env = {"NEXA_CACHE": str(tmp_path), "HF_ENDPOINT": f"http://127.0.0.1:{free_port()}", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "pull", "gemma"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 2
    assert "cannot be reached" in result.stderr and "local path" in result.stderr
    assert not any(tmp_path.rglob("*.gguf"))


def test_list_shows_the_catalogue_and_what_is_local(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "list"],
        capture_output=True,
        text=True,
        check=True,
        env={"NEXA_CACHE": str(tmp_path), "PATH": "/usr/bin:/bin"},
    ).stdout
    lines = {line.split()[0]: line.split() for line in out.splitlines() if line and not line.startswith("Cache")}
    assert lines["smollm2"][1:4] == ["text", "gguf", "yes"]
    assert lines["whisper-tiny.en"][1:4] == ["audio", "ct2", "yes"]
    assert lines["gemma"][3] == "no" and lines["sd1-5"][1] == "image"
