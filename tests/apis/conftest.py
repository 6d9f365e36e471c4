"""Routers with the Responses and Messages APIs in front of the session's real text service
(SmolLM2), their stores on SQLite files or on a real PostgreSQL server, and the official clients."""

from __future__ import annotations

from collections.abc import Iterator

import anthropic
import httpx
import openai
import pytest
from apis_helpers import CLI_OUTCOMES, StartRouter, need
from postgres_server import PostgresServer, bin_dir
from support import router_spec

from nexa_cli.supervisor import Child, Supervisor


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if CLI_OUTCOMES:
        terminalreporter.section("agent clients (tests/apis)")
        for line in CLI_OUTCOMES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def start_router(supervisor: Supervisor, text_url: str) -> StartRouter:
    """Start a router in front of the text service with extra NEXA_ROUTER_* settings; returns (url, child)."""

    def start(name: str, env: dict[str, str]) -> tuple[str, Child]:
        spec = router_spec({"text": text_url}, env=env, name=name)
        child = supervisor.start(spec)
        supervisor.wait_ready(child, 60.0)
        return spec.url, child

    return start


@pytest.fixture(scope="session")
def apis_url(start_router: StartRouter, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The router most tests use: its store an SQLite file of its own."""
    store = tmp_path_factory.mktemp("apis-store") / "responses.sqlite3"
    url, _ = start_router("router-apis", {"NEXA_ROUTER_STORE_PATH": str(store)})
    return url


@pytest.fixture(scope="session")
def oai(apis_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=apis_url + "/v1", api_key="unused", timeout=180.0, max_retries=0)


@pytest.fixture(scope="session")
def claude(apis_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=apis_url, api_key="unused", timeout=180.0, max_retries=0)


@pytest.fixture(scope="session")
def http(apis_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=apis_url, timeout=180.0) as client:
        yield client


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """A real PostgreSQL server private to the test session."""
    binaries = bin_dir()
    if binaries is None:
        need("PostgreSQL", "run scripts/install-postgresql.sh")
    assert binaries is not None
    server = PostgresServer(binaries, tmp_path_factory.mktemp("postgres") / "postgres.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()
