"""The router's store of responses on a real database: it survives a restart of the router (SQLite
file and PostgreSQL), a conversation stored through one router continues through another on the
same PostgreSQL, and a response past its TTL (or never stored) is a 404 with OpenAI's error body."""

from __future__ import annotations

import time

import httpx
import openai
import pytest
from apis_helpers import StartRouter
from postgres_server import PostgresServer

from nexa_cli.supervisor import Supervisor

MODEL = "smollm2"


def client(url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key="unused", timeout=180.0, max_retries=0)


def ask(url: str, text: str, previous: str | None = None) -> openai.types.responses.Response:
    return client(url).responses.create(
        model=MODEL, input=text, previous_response_id=previous, max_output_tokens=3, temperature=0
    )


def continues(url: str, first: openai.types.responses.Response) -> None:
    """A follow-up through `url` finds `first` and sees its conversation."""
    stored = client(url).responses.retrieve(first.id)
    assert stored.output_text == first.output_text and stored.status == first.status
    second = ask(url, "And then?", first.id)
    assert second.previous_response_id == first.id
    assert second.usage is not None and first.usage is not None
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_store_survives_a_router_restart(
    backend: str,
    start_router: StartRouter,
    supervisor: Supervisor,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> None:
    if backend == "sqlite":
        env = {"NEXA_ROUTER_STORE_PATH": str(tmp_path_factory.mktemp("restart") / "responses.sqlite3")}
    else:
        postgres: PostgresServer = request.getfixturevalue("postgres")
        env = {"NEXA_ROUTER_DATABASE_URL": postgres.url}
    url, child = start_router(f"router-restart-{backend}", env)
    first = ask(url, "Once upon a time")
    supervisor.stop_child(child)
    url, child = start_router(f"router-restarted-{backend}", env)
    try:
        continues(url, first)
    finally:
        supervisor.stop_child(child)


def test_two_routers_share_conversations_on_postgresql(start_router: StartRouter, postgres: PostgresServer) -> None:
    env = {"NEXA_ROUTER_DATABASE_URL": postgres.url}
    one, _ = start_router("router-pg-one", env)
    two, _ = start_router("router-pg-two", env)
    first = ask(one, "Once upon a time")
    continues(two, first)
    # And deleting through one is seen by the other.
    client(two).responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client(one).responses.retrieve(first.id)


def test_unknown_and_expired_previous_response_id_are_404(start_router: StartRouter, postgres: PostgresServer) -> None:
    ttl_s = 2.0
    url, _ = start_router(
        "router-pg-ttl", {"NEXA_ROUTER_DATABASE_URL": postgres.url, "NEXA_ROUTER_RESPONSES_TTL_S": str(ttl_s)}
    )
    first = ask(url, "Hi")
    assert client(url).responses.retrieve(first.id).id == first.id  # alive within its TTL
    time.sleep(ttl_s + 0.5)
    for previous in (first.id, "resp_never_stored"):
        answer = httpx.post(
            url + "/v1/responses", json={"model": MODEL, "input": "Again", "previous_response_id": previous}, timeout=60
        )
        assert answer.status_code == 404, answer.text
        error = answer.json()["error"]
        assert error["type"] == "not_found_error" and error["code"] == "previous_response_not_found"
        assert error["param"] == "previous_response_id" and previous in error["message"]
    gone = httpx.get(f"{url}/v1/responses/{first.id}", timeout=30)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "response_not_found"


def test_store_down_is_a_503_not_a_500(start_router: StartRouter) -> None:
    """A database that cannot be reached answers 503 with Retry-After, and names no host."""
    from support import closed_port_url

    dead = closed_port_url().replace("http://", "postgresql://nexa@") + "/nexa"
    url, _ = start_router("router-pg-dead", {"NEXA_ROUTER_DATABASE_URL": dead, "NEXA_ROUTER_STORE_TIMEOUT_S": "3"})
    answer = httpx.get(url + "/v1/responses/resp_x", timeout=30)
    assert answer.status_code == 503, answer.text
    assert answer.headers["retry-after"] == "2"
    assert answer.json()["error"]["code"] == "store_unavailable"
    assert "127.0.0.1" not in answer.text
