"""Clients for the shared text service, and private copies of it for tests that need their own
settings (a tiny queue) or a model that fails to load."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import openai
import pytest
from support import service_spec

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="session")
def http(text_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=text_url, timeout=120.0) as client:
        yield client


@pytest.fixture(scope="session")
def oai(text_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=text_url + "/v1", api_key="x", timeout=120.0, max_retries=0)


@pytest.fixture(scope="session")
def text_service(supervisor: Supervisor, nexa_cache: Path) -> Callable[..., str]:
    """Start a private text service with extra NEXA_TEXT_* settings; returns its URL."""

    def start(env: dict[str, str], name: str, wait: bool = True) -> str:
        spec = service_spec("text", {"NEXA_TEXT_MODEL": "smollm2", **env}, name=name)
        child = supervisor.start(spec)
        if wait:
            supervisor.wait_ready(child, 120.0)
        return str(spec.url)

    return start
