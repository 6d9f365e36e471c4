"""The CPU images under `docker compose up`, driven through the router's published 127.0.0.1 port.

One stack for the module (build + up once): a chat completion from SmolLM2, a transcription of
jfk.flac, a txt2img from the tiny pipeline, /v1/models; then the text container is killed while
requests run. Everything is removed at the end with `docker compose down -v`.
"""

from __future__ import annotations

import base64
import os
import signal
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from compose_helpers import Compose, inspect, require_docker, wait_until_ready
from support import chat_status, status_runs, transcribing

from nexa_cli.supervisor import free_port

PROFILES = "text,image,audio"
# Building the images from a cold cache and loading three models takes longer than one test's default.
pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[Compose, str]]:
    require_docker()
    port = free_port()
    compose = Compose(
        f"nexa-test-{os.getpid()}",
        {
            "NEXA_HOST": "127.0.0.1",
            "NEXA_PORT": str(port),
            "COMPOSE_PROFILES": PROFILES,
            "NEXA_LOG_JSON": "false",
            # Docker restarts a crashed container within about a second and the router's connect
            # would wait that out; a short connect timeout makes the outage visible as 503s.
            "NEXA_ROUTER_CONNECT_TIMEOUT_S": "0.3",
        },
    )
    url = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        compose.run("build")
        built = time.monotonic()
        compose.run("up", "--detach")
        wait_until_ready(url, 600)
        print(f"\ncompose build {built - started:.0f} s, up until ready {time.monotonic() - built:.0f} s")
        yield compose, url
    except BaseException:
        print(compose.logs())
        raise
    finally:
        compose.down()


@pytest.fixture(scope="module")
def client(stack: tuple[Compose, str]) -> openai.OpenAI:
    return openai.OpenAI(base_url=stack[1] + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_only_the_router_is_published_and_only_on_loopback(stack: tuple[Compose, str]) -> None:
    compose, url = stack
    for service in ("text", "image", "audio"):
        assert inspect(compose.container(service), "{{json .NetworkSettings.Ports}}").count("HostIp") == 0
    router_ports = inspect(compose.container("router"), "{{json .NetworkSettings.Ports}}")
    assert '"HostIp":"127.0.0.1"' in router_ports and url.rsplit(":", 1)[1] in router_ports
    for service in ("router", "text", "image", "audio"):
        container = compose.container(service)
        assert inspect(container, "{{.Config.User}}") == "10001:10001"
        # Ready through the router already; Docker's own probe runs every 5 s and may lag behind.
        deadline = time.monotonic() + 60
        while inspect(container, "{{.State.Health.Status}}") == "starting" and time.monotonic() < deadline:
            time.sleep(1)
        assert inspect(container, "{{.State.Health.Status}}") == "healthy"


def test_chat_completion_from_smollm2(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "What is the capital of France?"}], max_tokens=12
    )
    assert answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 12


def test_transcription_of_jfk(client: openai.OpenAI, shared_data: Path) -> None:
    with (shared_data / "jfk.flac").open("rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-tiny.en", file=audio).text
    assert "ask not what your country can do for you" in text.lower()


def test_txt2img_with_the_tiny_pipeline(stack: tuple[Compose, str]) -> None:
    body = {"prompt": "a lighthouse", "width": 64, "height": 96, "sample_steps": 2, "seed": 7}
    response = httpx.post(stack[1] + "/v1/txt2img", json=body, timeout=120)
    assert response.status_code == 200, response.text
    png = base64.b64decode(response.json()["data"][0]["base64"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 96)


def test_models_lists_every_service_model(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"smollm2", "whisper-tiny.en", "tiny-sd"} <= ids


def test_killed_text_container_gives_503_then_restarts_by_policy_while_audio_keeps_answering(
    stack: tuple[Compose, str], shared_data: Path
) -> None:
    compose, url = stack
    text = compose.container("text")
    restarts_before = int(inspect(text, "{{.RestartCount}}"))
    with (
        transcribing(url, (shared_data / "jfk.flac").read_bytes()) as audio_statuses,
        httpx.Client(base_url=url, timeout=60) as http,
    ):
        assert chat_status(http) == 200
        # A crash, not `docker kill` (which counts as a manual stop and would not be restarted):
        # SIGKILL to the service's process from the host.
        os.kill(int(inspect(text, "{{.State.Pid}}")), signal.SIGKILL)
        seen: list[int] = []
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and len(seen) < 5000 and (503 not in seen or seen[-1] != 200):
            seen.append(chat_status(http))
            if seen[-20:] == [200] * 20:
                break  # back, without a 503 ever: fail below instead of waiting out the deadline
            time.sleep(0.02)
    summary = status_runs(seen)
    assert 503 in seen, f"the router should answer 503 while text is down; got {summary}"
    assert seen[-1] == 200, f"text did not answer again within 300 s; got {summary}"
    # The first request may meet the pooled keep-alive connection the crash closed: the router
    # then says 502 (the service dropped it), not 503 (unreachable). Every later one must be 503.
    assert seen[0] in (502, 503), f"unexpected first answer after the crash: {summary}"
    assert set(seen[1:]) <= {200, 503}, f"unexpected text answers: {summary}\n{compose.logs()}"
    print(f"\ntext answers after the kill: {summary}")
    assert int(inspect(text, "{{.RestartCount}}")) > restarts_before, "the restart policy should have restarted it"
    assert inspect(text, "{{.State.Health.Status}}") in ("healthy", "starting")
    assert audio_statuses and set(audio_statuses) == {200}, f"audio failed meanwhile: {audio_statuses}"
