"""`nexa pull smollm2-onnx` converts the embedded GGUF into an ONNX Runtime GenAI model, from scratch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexa_cli import local
from nexa_common.catalogue import Modality, ModelError


def test_pull_builds_a_complete_model_from_scratch(
    onnx_pull: subprocess.CompletedProcess[str], onnx_model: Path
) -> None:
    assert "Building smollm2-onnx" in onnx_pull.stdout
    assert "smollm2-onnx is ready" in onnx_pull.stdout
    config = json.loads((onnx_model / "genai_config.json").read_text())
    assert config["model"]["type"] == "llama"
    assert (onnx_model / "tokenizer.json").is_file()
    assert (onnx_model / "chat_template.jinja").is_file()
    weights = sum(p.stat().st_size for p in onnx_model.glob("model.onnx*"))
    assert 40_000_000 < weights < 200_000_000  # int4: well under the 540 MB float32 model
    # Built in a temporary (hidden) folder and renamed: nothing half-built or intermediate is left
    # behind. Other built models (tiny-sd, from other tests) may share the folder.
    names = {p.name for p in onnx_model.parent.iterdir()}
    assert "smollm2-onnx" in names
    assert not [name for name in names if name.startswith(".")], names


def test_second_pull_reuses_the_build(onnx_model: Path, nexa_cache: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "pull", "smollm2-onnx"],
        env={**os.environ, "NEXA_CACHE": str(nexa_cache)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0
    assert "already present" in result.stdout


def test_onnx_server_maps_a_gguf_name_to_its_onnx_variant(onnx_model: Path, nexa_cache: Path) -> None:
    assert local.plan(["smollm2"], onnx=True, cache_dir=nexa_cache).models == {Modality.TEXT: "smollm2-onnx"}
    assert local.plan([], onnx=True, cache_dir=nexa_cache).models == {Modality.TEXT: "smollm2-onnx"}
    assert local.plan(["smollm2-onnx"], onnx=True, cache_dir=nexa_cache).models == {Modality.TEXT: "smollm2-onnx"}
    assert local.plan([str(onnx_model)], onnx=True, cache_dir=nexa_cache).models == {Modality.TEXT: str(onnx_model)}


@pytest.mark.parametrize("model", ["whisper-tiny.en", "tiny-sd"])
def test_onnx_server_says_which_modalities_have_an_onnx_backend(model: str, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"only these modalities have an ONNX Runtime backend: text"):
        local.plan([model], onnx=True, cache_dir=tmp_path)


def test_onnx_server_refuses_a_model_without_an_onnx_variant(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"'gemma' is a gguf model with no ONNX variant.*smollm2-onnx"):
        local.plan(["gemma"], onnx=True, cache_dir=tmp_path)


def test_onnx_server_cli_reports_an_unsupported_modality(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "server", "--local", "onnx", "whisper-tiny.en"],
        env={**os.environ, "NEXA_CACHE": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "only these modalities have an ONNX Runtime backend: text" in result.stderr
