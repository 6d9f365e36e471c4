"""Helpers shared by the test packages (importable as `support`: pytest puts tests/ on the path).

Process specs for the real components, started through the CLI's Supervisor as `nexa server` does.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port, python_module
from nexa_common.modalities import MODALITIES as TABLE
from nexa_common.modalities import spec

MODALITIES = tuple(s.name for s in TABLE)
# What whisper hears in ../shared/data/jfk.flac (the seed's example).
JFK_SENTENCE = (
    "And so my fellow Americans, ask not what your country can do for you, ask what you can do for your country."
)


def normalise(text: str) -> str:
    """Lower case, no punctuation, single spaces: what two transcripts of the same words share."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


def service_spec(modality: str, env: dict[str, str] | None = None, name: str | None = None) -> ProcessSpec:
    """`python -m nexa_<modality>` on a free 127.0.0.1 port."""
    port = free_port()
    service = spec(modality)
    prefix = service.env_prefix
    full_env = {prefix + "HOST": "127.0.0.1", prefix + "PORT": str(port), prefix + "LOG_JSON": "false"}
    full_env.update(env or {})
    return ProcessSpec(name or f"{modality}-service", python_module(service.package), port, full_env)


def router_spec(
    upstreams: dict[str, str], env: dict[str, str] | None = None, name: str = "router", ready_path: str = "/ready"
) -> ProcessSpec:
    """A router in front of the given upstreams; `ready_path="/health"` when some upstream is meant to be down."""
    port = free_port()
    full_env = {"NEXA_ROUTER_HOST": "127.0.0.1", "NEXA_ROUTER_PORT": str(port), "NEXA_ROUTER_LOG_JSON": "false"}
    # An empty value, not a missing one: the test process may have NEXA_ROUTER_* set for other reasons.
    for service in TABLE:
        full_env[service.router_url_env] = upstreams.get(service.name, "")
    full_env.update(env or {})
    return ProcessSpec(name, python_module("nexa_router"), port, full_env, ready_path=ready_path)


def closed_port_url() -> str:
    """An address where nothing listens (a port just freed)."""
    return f"http://127.0.0.1:{free_port()}"


def start_ready(supervisor: Supervisor, spec: ProcessSpec, timeout_s: float = 180.0) -> str:
    """Start a component under the supervisor, wait until it is ready, and return its URL."""
    supervisor.wait_ready(supervisor.start(spec), timeout_s)
    return spec.url


def status_runs(statuses: list[int]) -> str:
    """[503, 503, 200] -> '503x2 200x1': a readable account of a long sequence of answers."""
    runs: list[list[int]] = []
    for status in statuses:
        if runs and runs[-1][0] == status:
            runs[-1][1] += 1
        else:
            runs.append([status, 1])
    return " ".join(f"{status}x{count}" for status, count in runs)


def chat_status(http: httpx.Client) -> int:
    """The status of a tiny chat completion through `http` (-1: no HTTP answer at all)."""
    body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    try:
        return http.post("/v1/chat/completions", json=body).status_code
    except httpx.HTTPError:
        return -1


@contextmanager
def transcribing(url: str, audio: bytes, headers: dict[str, str] | None = None) -> Iterator[list[int]]:
    """Transcribe `audio` through the router at `url` again and again in a thread, while the block runs;
    yields the list the statuses are appended to (complete once the block has left)."""
    statuses: list[int] = []
    stop = threading.Event()

    def run() -> None:
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            for _ in range(500):  # bounded; stopped long before
                if stop.is_set():
                    return
                files = {"file": ("jfk.flac", audio, "audio/flac")}
                statuses.append(http.post("/v1/audio/transcriptions", files=files).status_code)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    try:
        yield statuses
    finally:
        stop.set()
        worker.join(180)
