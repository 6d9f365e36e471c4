"""`nexa server smollm2 all-minilm-l6-v2` and `nexa list`: the embedding model is one more model of
the text service's pool."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexa_cli import docker_mode, local
from nexa_common.catalogue import Modality, ModelError


def test_naming_it_with_a_chat_model_serves_both_from_one_text_service(embedding_model: Path, nexa_cache: Path) -> None:
    plan = local.plan(["smollm2", "all-minilm-l6-v2", "whisper-tiny.en"], cache_dir=nexa_cache)
    assert plan.models == {Modality.TEXT: "smollm2", Modality.AUDIO: "whisper-tiny.en"}
    assert plan.more == {Modality.TEXT: ["all-minilm-l6-v2"]}
    text, _ = local.service_specs(plan, reload=False, n_ctx=None)
    assert text.env["NEXA_TEXT_MODEL"] == "smollm2" and text.env["NEXA_TEXT_MODELS"] == "all-minilm-l6-v2"
    assert "text: smollm2, all-minilm-l6-v2" in plan.describe()
    # Named first, the embedding model still leaves the chat model the service's default.
    reordered = local.plan(["all-minilm-l6-v2", "smollm2"], cache_dir=nexa_cache)
    assert reordered.models == {Modality.TEXT: "smollm2"} and reordered.more == {Modality.TEXT: ["all-minilm-l6-v2"]}


def test_alone_it_is_the_text_service_only_model(embedding_model: Path, nexa_cache: Path) -> None:
    plan = local.plan(["all-minilm-l6-v2"], cache_dir=nexa_cache)
    assert plan.models == {Modality.TEXT: "all-minilm-l6-v2"} and plan.more == {}
    (text,) = local.service_specs(plan, reload=False, n_ctx=None)
    assert text.env["NEXA_TEXT_MODEL"] == "all-minilm-l6-v2" and text.env["NEXA_TEXT_MODELS"] == ""
    # `nexa server onnx all-minilm-l6-v2`: it runs on ONNX Runtime already.
    assert local.plan(["all-minilm-l6-v2"], onnx=True, cache_dir=nexa_cache).models == plan.models


def test_docker_mode_refuses_it(embedding_model: Path) -> None:
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
    assert row.split()[1:4] == ["text", "onnx-embedding", "yes"]
    assert "nexa_text.embedding_build" in row
