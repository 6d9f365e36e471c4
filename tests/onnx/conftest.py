"""The ONNX model, built from scratch once per session with `nexa pull smollm2-onnx` into the
session's fresh cache, and `nexa server --local onnx smollm2` (router and text service) serving it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port, python_module

BUILD_TIMEOUT_S = 600


@pytest.fixture(scope="session")
def onnx_pull(nexa_cache: Path) -> subprocess.CompletedProcess[str]:
    """`nexa pull smollm2-onnx`: the GGUF converted to an int4 ONNX model (about a minute on 2 cores)."""
    return subprocess.run(
        [sys.executable, "-m", "nexa_cli", "pull", "smollm2-onnx"],
        env={**os.environ, "NEXA_CACHE": str(nexa_cache)},
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT_S,
    )


@pytest.fixture(scope="session")
def onnx_model(onnx_pull: subprocess.CompletedProcess[str], nexa_cache: Path) -> Path:
    if onnx_pull.returncode != 0:
        pytest.fail(f"nexa pull smollm2-onnx failed:\n{onnx_pull.stdout[-3000:]}\n{onnx_pull.stderr[-3000:]}")
    return nexa_cache / "built" / "smollm2-onnx"


@pytest.fixture(scope="session")
def onnx_router_url(supervisor: Supervisor, onnx_model: Path, nexa_cache: Path) -> str:
    """`nexa server --local onnx smollm2` as a user runs it; ready once its router is."""
    port = free_port()
    argv = python_module("nexa_cli", "server", "--local", "--port", str(port), "onnx", "smollm2")
    spec = ProcessSpec("nexa-server-onnx", argv, port, {"NEXA_CACHE": str(nexa_cache), "PYTHONUNBUFFERED": "1"})
    child = supervisor.start(spec)
    supervisor.wait_ready(child, 180.0)
    return spec.url


@pytest.fixture(scope="session")
def onnx_http(onnx_router_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=onnx_router_url, timeout=120.0) as client:
        yield client


@pytest.fixture(scope="session")
def onnx_oai(onnx_router_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=onnx_router_url + "/v1", api_key="x", timeout=120.0, max_retries=0)
