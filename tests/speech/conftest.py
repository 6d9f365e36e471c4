"""The speech tests' router: one in front of the session's real audio service (Whisper + the piper-joe voice)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from support import router_spec, start_ready

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="session")
def speech_router_url(supervisor: Supervisor, audio_url: str) -> str:
    return start_ready(supervisor, router_spec({"audio": audio_url}, name="speech-router"))


@pytest.fixture(scope="module")
def router(speech_router_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=speech_router_url, timeout=120) as client:
        yield client


@pytest.fixture(scope="module")
def client(speech_router_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{speech_router_url}/v1", api_key="unused", max_retries=0, timeout=120)


@pytest.fixture(scope="module")
def service(audio_url: str) -> Iterator[httpx.Client]:
    """The audio service itself, for its metrics."""
    with httpx.Client(base_url=audio_url, timeout=30) as client:
        yield client
