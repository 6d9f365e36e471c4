"""Fixtures that start the real components as local processes on 127.0.0.1, as `nexa server` does.

Each service is started once per test session (models load once) through the same Supervisor the
CLI uses; tests that kill or restart a service start their own copy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import router_spec, service_spec, start_ready

from nexa_cli.supervisor import Supervisor

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "jfk.flac").exists():
        pytest.fail(f"test audio not found in {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def nexa_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model cache private to the test session (built models land here, not in ~/.cache)."""
    path = tmp_path_factory.mktemp("nexa-cache")
    os.environ["NEXA_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session")
def supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    with Supervisor(tmp_path_factory.mktemp("logs")) as sup:
        yield sup


@pytest.fixture(scope="session")
def text_url(supervisor: Supervisor, nexa_cache: Path) -> str:
    """The real text service with SmolLM2."""
    return start_ready(supervisor, service_spec("text", {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_QUEUE_SIZE": "8"}))


@pytest.fixture(scope="session")
def audio_url(supervisor: Supervisor, nexa_cache: Path) -> str:
    """The real audio service with whisper-tiny.en."""
    return start_ready(supervisor, service_spec("audio", {"NEXA_AUDIO_MODEL": "whisper-tiny.en"}))


@pytest.fixture(scope="session")
def tiny_sd(nexa_cache: Path) -> Path:
    """The tiny image pipeline, built with `nexa pull tiny-sd` into the session cache."""
    import subprocess

    subprocess.run([sys.executable, "-m", "nexa_cli", "pull", "tiny-sd"], check=True, env={**os.environ})
    return nexa_cache


@pytest.fixture(scope="session")
def image_url(supervisor: Supervisor, tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The real image service with the tiny pipeline, an input folder and an output folder."""
    inputs = tmp_path_factory.mktemp("image-inputs")
    outputs = tmp_path_factory.mktemp("image-outputs")
    env = {
        "NEXA_IMAGE_MODEL": "tiny-sd",
        "NEXA_IMAGE_INPUT_DIR": str(inputs),
        "NEXA_IMAGE_OUTPUT_DIR": str(outputs),
    }
    return start_ready(supervisor, service_spec("image", env))


@pytest.fixture(scope="session")
def image_input_dir(image_url: str, supervisor: Supervisor) -> Path:
    child = next(c for c in supervisor.children if c.spec.name == "image-service")
    return Path(child.spec.env["NEXA_IMAGE_INPUT_DIR"])


@pytest.fixture(scope="session")
def router_url(supervisor: Supervisor, text_url: str, audio_url: str, image_url: str) -> str:
    """The router in front of all three real services."""
    return start_ready(supervisor, router_spec({"text": text_url, "audio": audio_url, "image": image_url}))
