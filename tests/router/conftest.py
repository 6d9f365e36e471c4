"""Routers in front of fake upstreams (fault injection); the real-service tests use the session fixtures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from router_helpers import API_KEYS, AUDIO_LIMIT, JSON_LIMIT, fake_process
from support import closed_port_url, router_spec, start_ready

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="session")
def router_supervisor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervisor]:
    """The router tests' own processes (separate from the shared services, so tests may stop them)."""
    with Supervisor(tmp_path_factory.mktemp("router-logs")) as sup:
        yield sup


@pytest.fixture(scope="session")
def fakes(router_supervisor: Supervisor) -> dict[str, str]:
    """Fake text, image and audio services (ready) and one that stays loading."""
    names = {"text": "ready", "image": "ready", "audio": "ready", "loading": "loading"}
    specs = {key: fake_process(f"fake-{key}", ready) for key, ready in names.items()}
    for spec in specs.values():
        router_supervisor.start(spec)
    for child in router_supervisor.children:
        router_supervisor.wait_ready(child, 60.0)
    return {key: spec.url for key, spec in specs.items()}


@pytest.fixture(scope="session")
def fault_router(router_supervisor: Supervisor, fakes: dict[str, str]) -> str:
    """A router in front of the three fakes, with small limits and a short read timeout."""
    env = {
        "NEXA_ROUTER_READ_TIMEOUT_S": "2",
        "NEXA_ROUTER_MAX_JSON_BODY_BYTES": str(JSON_LIMIT),
        "NEXA_ROUTER_MAX_AUDIO_BODY_BYTES": str(AUDIO_LIMIT),
        "NEXA_ROUTER_CORS_ORIGINS": "http://ui.example, http://other.example",
    }
    upstreams = {m: fakes[m] for m in ("text", "image", "audio")}
    return start_ready(router_supervisor, router_spec(name="router-faults", upstreams=upstreams, env=env), 60.0)


@pytest.fixture(scope="session")
def keyed_router(router_supervisor: Supervisor, fakes: dict[str, str]) -> str:
    env = {"NEXA_ROUTER_API_KEYS": ",".join(API_KEYS)}
    return start_ready(
        router_supervisor, router_spec(name="router-keys", upstreams={"text": fakes["text"]}, env=env), 60.0
    )


@pytest.fixture(scope="session")
def keyed_router_log(keyed_router: str, router_supervisor: Supervisor) -> Path:
    return next(c.log_path for c in router_supervisor.children if c.spec.name == "router-keys")


@pytest.fixture(scope="session")
def partial_router(router_supervisor: Supervisor, fakes: dict[str, str]) -> str:
    """Text configured and up, audio configured but unreachable, image not configured."""
    upstreams = {"text": fakes["text"], "audio": closed_port_url()}
    return start_ready(
        router_supervisor, router_spec(name="router-partial", upstreams=upstreams, ready_path="/health"), 60.0
    )


@pytest.fixture(scope="session")
def loading_router(router_supervisor: Supervisor, fakes: dict[str, str]) -> str:
    """Text ready, image still loading."""
    upstreams = {"text": fakes["text"], "image": fakes["loading"]}
    return start_ready(
        router_supervisor, router_spec(name="router-loading", upstreams=upstreams, ready_path="/health"), 60.0
    )
