"""`nexa server all-minilm-l6-v2` and `nexa list`: the embedding model is one the text service serves."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexa_cli import docker_mode, local
from nexa_common.catalogue import Modality, ModelError


def test_naming_the_embedding_model_serves_it_beside_the_default_chat_model(
    embedding_model: Path, nexa_cache: Path
) -> None:
    plan = local.plan(["all-minilm-l6-v2"], cache_dir=nexa_cache)
    assert plan.models == {Modality.TEXT: "smollm2"} and plan.embedding == "all-minilm-l6-v2"
    (text,) = local.service_specs(plan, reload=False, n_ctx=None)
    assert text.env["NEXA_TEXT_MODEL"] == "smollm2"
    assert text.env["NEXA_TEXT_EMBEDDING_MODEL"] == "all-minilm-l6-v2"
    both = local.plan(["smollm2", "all-minilm-l6-v2", "whisper-tiny.en"], cache_dir=nexa_cache)
    assert both.models == {Modality.TEXT: "smollm2", Modality.AUDIO: "whisper-tiny.en"}
    assert "embeddings: all-minilm-l6-v2" in both.describe()


def test_two_embedding_models_or_docker_mode_are_refused(embedding_model: Path, nexa_cache: Path) -> None:
    with pytest.raises(ModelError, match="embedding models; serve one"):
        local.plan(["all-minilm-l6-v2", str(embedding_model)], cache_dir=nexa_cache)
    with pytest.raises(ModelError, match="--local"):
        docker_mode.plan(["all-minilm-l6-v2"], onnx=False)


def test_list_shows_it_built(embedding_model: Path, nexa_cache: Path) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "list"],
        env={**os.environ, "NEXA_CACHE": str(nexa_cache)},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    row = next(line for line in listed.splitlines() if line.startswith("all-minilm-l6-v2"))
    assert row.split()[1:4] == ["text", "onnx", "yes"]
    assert "nexa_text.embedding_build" in row
