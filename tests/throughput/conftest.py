"""Text services under the default engine (the batched one), and private copies with settings of
their own (prefix reuse off, a small KV cache), all with the real SmolLM2 on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support import service_spec, start_ready

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="session")
def start_text(supervisor: Supervisor, nexa_cache: Path) -> Callable[..., str]:
    """Start a private text service with extra NEXA_TEXT_* settings; returns its URL."""

    def start(env: dict[str, str], name: str) -> str:
        return start_ready(supervisor, service_spec("text", {"NEXA_TEXT_MODEL": "smollm2", **env}, name=name))

    return start


@pytest.fixture(scope="module")
def default_url(start_text: Callable[..., str]) -> str:
    """Out-of-the-box settings, but for the queue: the burst test needs room for 16 waiting."""
    return start_text({"NEXA_TEXT_QUEUE_SIZE": "16"}, name="text-default")
