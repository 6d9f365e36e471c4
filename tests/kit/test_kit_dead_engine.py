"""A dead engine is noticed: the batched scheduler thread killed, or an engine that raises on every
request. /ready turns 503 with the reason, requests are answered 503 (never left hanging), and the
process exits non-zero so compose or Kubernetes restart it. Real model, real process."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import service_spec

from nexa_cli.supervisor import Child, Supervisor
from nexa_common.kit.service import FATAL_EXIT_CODE

FAULTY = Path(__file__).with_name("faulty_text.py")
ASK = {"prompt": "1, 2, 3,", "max_tokens": 8, "temperature": 0}
LONG = {"prompt": "1, 2, 3, 4, 5, 6, 7, 8,", "max_tokens": 1500, "temperature": 0}
# Bounded waits: every request has a timeout, every loop a deadline; none of them is a pass/fail timing.
TIMEOUT = httpx.Timeout(60.0, connect=5.0)


@dataclasses.dataclass
class Faulty:
    child: Child
    client: httpx.Client
    trigger: Path


@pytest.fixture
def faulty(request: pytest.FixtureRequest, tmp_path: Path, nexa_cache: Path) -> Iterator[Faulty]:
    mode, env = request.param
    trigger = tmp_path / "fault"
    spec = service_spec(
        "text",
        {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_QUEUE_SIZE": "4", "NEXA_TEXT_FATAL_EXIT_DELAY_S": "8",
         "NEXA_TEST_FAULT": mode, "NEXA_TEST_FAULT_FILE": str(trigger), **env},
        name=f"text-faulty-{mode}",
    )  # fmt: skip
    spec = dataclasses.replace(spec, argv=[sys.executable, str(FAULTY)])
    with Supervisor(tmp_path / "logs") as supervisor:
        child = supervisor.start(spec)
        supervisor.wait_ready(child, 180)
        with httpx.Client(base_url=spec.url, timeout=TIMEOUT) as client:
            assert client.post("/v1/completions", json=ASK).status_code == 200  # healthy first
            yield Faulty(child, client, trigger)


def wait_not_ready(client: httpx.Client) -> httpx.Response:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready = client.get("/ready")
        if ready.status_code == 503:
            return ready
        time.sleep(0.1)
    pytest.fail("/ready never turned 503")


def assert_refused_then_exits(faulty: Faulty, reason: str) -> None:
    ready = wait_not_ready(faulty.client)
    assert ready.json()["status"] == "failed" and reason in ready.json()["detail"], ready.text
    refused = faulty.client.post("/v1/completions", json=ASK)
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "model_failed" and reason in refused.json()["error"]["message"]
    stream = faulty.client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "hi"}],
                                                               "stream": True})  # fmt: skip
    assert stream.status_code == 503
    assert faulty.client.get("/health").status_code == 200  # alive until it exits, to say why
    assert faulty.child.process.wait(timeout=60) == FATAL_EXIT_CODE


@pytest.mark.parametrize("faulty", [("kill-scheduler", {"NEXA_TEXT_MAX_CONCURRENCY": "2"})], indirect=True)
def test_a_killed_scheduler_thread_fails_the_requests_in_flight_and_the_service(faulty: Faulty) -> None:
    with faulty.client.stream("POST", "/v1/completions", json={**LONG, "stream": True}) as running:
        lines = running.iter_lines()
        assert next(line for line in lines if line.startswith("data: "))  # generating
        queued = httpx.Client(base_url=str(faulty.client.base_url), timeout=TIMEOUT)
        faulty.trigger.touch()  # the scheduler thread ends at its next step
        rest = [line for line in lines if line.startswith("data: ")]
    # The stream in flight ends with an error event and [DONE] instead of hanging.
    assert rest[-1] == "data: [DONE]" and '"error"' in rest[-2], rest[-3:]
    with queued:
        # A request arriving now is told at once that the model stopped working.
        after = queued.post("/v1/completions", json=ASK)
    assert after.status_code == 503, after.text
    assert_refused_then_exits(faulty, "the batched scheduler thread died")


@pytest.mark.parametrize("faulty", [("raise", {"NEXA_TEXT_FATAL_FAILURES": "3"})], indirect=True)
def test_an_engine_that_raises_on_every_request_is_taken_as_dead(faulty: Faulty) -> None:
    faulty.trigger.touch()
    statuses = [faulty.client.post("/v1/completions", json=ASK).status_code for _ in range(3)]
    assert statuses == [500, 500, 503]  # the third failure in a row shows the engine is dead
    assert_refused_then_exits(faulty, "failed 3 requests in a row")
