"""Private copies of the real services for the kit's tests: one request runs at a time and a few
may wait, so a test can see which request the slot goes to."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import service_spec, start_ready

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="module")
def kit_supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    with Supervisor(tmp_path_factory.mktemp("kit-logs")) as supervisor:
        yield supervisor


@pytest.fixture(scope="module")
def one_at_a_time(kit_supervisor: Supervisor, nexa_cache: Path) -> Callable[[str, dict[str, str]], str]:
    """Start a service of a modality with one slot and a queue of four; returns its URL."""

    def start(modality: str, env: dict[str, str]) -> str:
        prefix = f"NEXA_{modality.upper()}_"
        settings = {prefix + "MAX_CONCURRENCY": "1", prefix + "QUEUE_SIZE": "4", prefix + "THREADS": "1", **env}
        return start_ready(kit_supervisor, service_spec(modality, settings, name=f"{modality}-one-slot"))

    return start
