"""Faults on a private stack (router + text + audio + image processes of its own, since they get
killed): a service killed mid-stream and mid-upload, a client leaving mid-stream, a service
restarted under load, a full disk for image outputs. The client always gets a clean error, the
router stays up, and everything recovers."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from reliability_helpers import SUMMARY, error_of, metric, shed, tally
from support import router_spec, service_spec

from nexa_cli.supervisor import Child, ProcessSpec, Supervisor

COUNTING = "Count from one to one thousand, one number per line: one, two, three,"
CHAT = "/v1/chat/completions"
# Bigger than a 64x64 PNG of noise, smaller than a 128x128 one: a 128x128 output cannot be saved.
FILE_SIZE_LIMIT = 24 * 1024
_LIMITED_IMAGE = (
    "import resource, runpy; "
    f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT})); "
    "runpy.run_module('nexa_image', run_name='__main__')"
)
_faults: list[str] = []


@dataclass
class Stack:
    supervisor: Supervisor
    router: str
    specs: dict[str, ProcessSpec]

    def child(self, name: str) -> Child:
        return next(c for c in self.supervisor.children if c.spec.name == name)

    def kill(self, name: str) -> None:
        """SIGKILL, as a crash or the OOM killer would: no graceful shutdown."""
        child = self.child(name)
        os.killpg(child.process.pid, signal.SIGKILL)
        self.supervisor.stop_child(child)

    def restart(self, name: str) -> None:
        """Start it again on the same port (the router's upstream URL) and wait until it is ready."""
        self.supervisor.wait_ready(self.supervisor.start(self.specs[name]), 180)


@pytest.fixture(scope="module")
def stack(tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    outputs = tmp_path_factory.mktemp("rel-image-outputs")
    image_env = {"NEXA_IMAGE_MODEL": "tiny-sd", "NEXA_IMAGE_OUTPUT_DIR": str(outputs), "NEXA_IMAGE_NUM_THREADS": "1"}
    image = service_spec("image", image_env, name="rel-image")
    specs = {
        "rel-text": service_spec("text", {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_QUEUE_SIZE": "8"}, name="rel-text"),
        "rel-audio": service_spec("audio", {"NEXA_AUDIO_MODEL": "whisper-tiny.en"}, name="rel-audio"),
        "rel-image": dataclasses.replace(image, argv=[sys.executable, "-c", _LIMITED_IMAGE]),
    }
    upstreams = {"text": specs["rel-text"].url, "audio": specs["rel-audio"].url, "image": specs["rel-image"].url}
    # Short connect timeout: a killed service is noticed at once.
    router = router_spec(upstreams, {"NEXA_ROUTER_CONNECT_TIMEOUT_S": "1"}, name="rel-router")
    with Supervisor(tmp_path_factory.mktemp("rel-fault-logs")) as supervisor:
        children = [supervisor.start(spec) for spec in (*specs.values(), router)]
        for child in children:
            supervisor.wait_ready(child, 180)
        yield Stack(supervisor, router.url, specs)
    SUMMARY.append(f"faults: {len(_faults)} injected and survived ({'; '.join(_faults)}), data lost: none")


@pytest.fixture
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.router, timeout=httpx.Timeout(120.0, connect=5.0)) as client:
        yield client
    assert httpx.get(stack.router + "/health", timeout=10).status_code == 200


def _chat(max_tokens: int, stream: bool = False) -> dict[str, object]:
    return {
        "messages": [{"role": "user", "content": COUNTING}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }


def _events(stream: httpx.Response, on_third: object = None, limit: int = 3000) -> list[str]:
    events: list[str] = []
    for line in stream.iter_lines():
        if line.startswith("data: "):
            events.append(line[6:])
            if len(events) == 3 and callable(on_third):
                on_third()
        if len(events) >= limit:
            break
    return events


def test_text_service_killed_mid_stream(stack: Stack, http: httpx.Client) -> None:
    with http.stream("POST", CHAT, json=_chat(1000, stream=True)) as stream:
        assert stream.status_code == 200
        events = _events(stream, on_third=lambda: stack.kill("rel-text"))
    # The stream ends with an error event instead of `[DONE]` (its 200 was already sent).
    assert events[-1] != "[DONE]", events[-5:]
    last = json.loads(events[-1])
    assert last["error"]["code"] == "upstream_disconnected", last
    assert not any(marker in events[-1] for marker in ("/work", "/tmp", "Traceback"))

    # While it is down: 503 with Retry-After, never a hang or a 500.
    down = http.post(CHAT, json=_chat(2))
    assert shed(down), down.text
    stack.restart("rel-text")
    assert http.post(CHAT, json=_chat(2)).status_code == 200
    _faults.append("text killed mid-stream")


def test_audio_service_killed_mid_upload(stack: Stack, http: httpx.Client, shared_data: Path) -> None:
    audio = (shared_data / "jfk.flac").read_bytes()
    boundary = "reliability-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="jfk.flac"\r\n'
        "Content-Type: audio/flac\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    chunk = 16 * 1024

    def body() -> Iterator[bytes]:
        yield head
        for i, start in enumerate(range(0, len(audio), chunk)):
            if i == 4:
                stack.kill("rel-audio")
            yield audio[start : start + chunk]
            time.sleep(0.01)
        yield tail

    headers = {"content-type": f"multipart/form-data; boundary={boundary}"}
    try:
        response = http.post("/v1/audio/transcriptions", content=body(), headers=headers)
    except httpx.TransportError as exc:  # the router answered early and closed while we still sent
        pytest.fail(f"no answer for an upload to a killed service: {exc!r}")
    assert response.status_code in (502, 503), response.text
    error_of(response)

    stack.restart("rel-audio")
    again = http.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)})
    assert again.status_code == 200, again.text
    assert "ask not" in again.json()["text"].lower()
    _faults.append("audio killed mid-upload")


def test_client_leaving_mid_stream_stops_generation_and_frees_the_slot(stack: Stack, http: httpx.Client) -> None:
    text = stack.specs["rel-text"].url
    before = metric(httpx.get(text + "/metrics").text, "nexa_text_tokens_generated_total")
    with http.stream("POST", CHAT, json=_chat(1500, stream=True)) as stream:
        assert len(_events(stream, limit=3)) == 3
        # Leaving the block closes the connection mid-stream.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        service = httpx.get(text + "/metrics").text
        router = httpx.get(stack.router + "/metrics").text
        running = metric(service, "nexa_text_running_sequences")
        in_flight = metric(router, "nexa_router_upstream_in_flight_requests", 'upstream="text"')
        if running == 0 and in_flight == 0:
            break
        time.sleep(0.1)
    assert running == 0, "the abandoned sequence still holds the model"
    assert in_flight == 0, "the router still holds the connection of the abandoned stream"
    # Stopped soon after the client left: far fewer than the 1500 tokens asked for.
    generated = metric(httpx.get(text + "/metrics").text, "nexa_text_tokens_generated_total") - before
    assert 1 <= generated < 300, generated
    assert http.post(CHAT, json=_chat(2)).status_code == 200
    _faults.append(f"client left mid-stream ({generated:.0f} of 1500 tokens generated)")


async def test_text_service_restarted_under_load(stack: Stack) -> None:
    outcomes: list[str] = []
    phase = {"name": "before"}
    stop = asyncio.Event()

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        for i in range(400):  # bounded; `stop` ends it far sooner
            if stop.is_set():
                return
            at = phase["name"]
            if (i + n) % 3 == 0:
                response = await client.get("/v1/models")
            else:
                response = await client.post(
                    CHAT, json={**_chat(4), "messages": [{"role": "user", "content": f"Hi {i}"}]}
                )
            if response.status_code == 200:
                if "chat" in str(response.request.url):
                    assert response.json()["choices"][0]["finish_reason"] in ("stop", "length")
                outcomes.append(f"{at}:ok")
            elif shed(response):
                outcomes.append(f"{at}:shed-{response.status_code}")
                await asyncio.sleep(0.2)
            else:
                outcomes.append(f"{at}:failed-{response.status_code}:{response.text[:200]}")

    async with httpx.AsyncClient(base_url=stack.router, timeout=httpx.Timeout(60.0, connect=5.0)) as client:
        workers = [asyncio.create_task(worker(client, n)) for n in range(3)]
        await asyncio.sleep(3)
        phase["name"] = "restart"
        await asyncio.to_thread(stack.supervisor.stop_child, stack.child("rel-text"))
        await asyncio.to_thread(stack.restart, "rel-text")
        phase["name"] = "after"
        await asyncio.sleep(3)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*workers), 120)

    failed = [o for o in outcomes if ":failed-" in o]
    SUMMARY.append(
        f"restart under load: {len(outcomes)} requests, {tally(o.split(':')[0] + ':' + o.split(':')[1] for o in outcomes)}"
    )
    assert not failed, failed[:5]
    assert any(o.startswith("before:ok") for o in outcomes)
    assert any(o.startswith("after:ok") for o in outcomes), "the router did not recover"
    _faults.append("text restarted under load")


def test_full_disk_for_image_outputs_is_507_through_the_router(stack: Stack, http: httpx.Client) -> None:
    big = http.post("/v1/txt2img", json={"prompt": "x", "width": 128, "height": 128, "sample_steps": 1, "seed": 1})
    error = error_of(big, 507)
    assert error["type"] == "insufficient_storage"
    small = http.post("/v1/txt2img", json={"prompt": "x", "width": 64, "height": 64, "sample_steps": 1, "seed": 1})
    assert small.status_code == 200, small.text
    png = http.get(small.json()["data"][0]["url"])
    assert png.status_code == 200 and png.content.startswith(b"\x89PNG")
    _faults.append("image output disk full")


class _ClosesReusedConnections(BaseHTTPRequestHandler):
    """Answers the first request of each connection and closes the connection, unanswered, on the
    second: what a service's graceful shutdown (or keep-alive expiry) does to a pooled connection
    at the moment a request is sent on it. Deterministic, where a real restart hits it by chance."""

    protocol_version = "HTTP/1.1"
    unanswered = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", "0")))
        served = getattr(self, "served", 0)
        self.served = served + 1
        if served:
            type(self).unanswered += 1
            self.close_connection = True
            return
        body = b'{"id": "x", "object": "text_completion", "choices": []}'
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_pooled_connection_closed_unanswered_is_resent(tmp_path: Path) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ClosesReusedConnections)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    upstream = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with Supervisor(tmp_path) as supervisor:
            spec = router_spec({"text": upstream}, name="rel-router-stale", ready_path="/health")
            supervisor.wait_ready(supervisor.start(spec), 60)
            with httpx.Client(base_url=spec.url, timeout=30) as http:
                answers = [http.post("/v1/completions", json={"prompt": "x"}) for _ in range(3)]
    finally:
        server.shutdown()
        server.server_close()
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert _ClosesReusedConnections.unanswered >= 2  # the router did meet closed connections, twice
    _faults.append(f"pooled connection closed unanswered x{_ClosesReusedConnections.unanswered}")
