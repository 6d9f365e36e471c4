"""A bounded load test against the router in front of the real services: mixed endpoints (chat,
completions, transcription, txt2img, models) from concurrent clients for a fixed time, in rounds.
Every request succeeds (with a complete, well-formed answer) or is turned away with 429/503 and
Retry-After; nothing else. The resident memory of every process (router and services) after the
last round stays close to what it was after the first: no leak.

The short run is in every test run; the soak run (marker `soak`) is the same, longer and wider."""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from reliability_helpers import SUMMARY, error_of, rss_mib, shed, tally

from nexa_cli.supervisor import Supervisor

KINDS = ("chat", "completions", "transcription", "txt2img", "models")
ROUNDS = 3
# Generous: allocator caches and lazily built kernels may add some; a leak grows with every request.
RSS_GROWTH_FACTOR = 1.25
RSS_GROWTH_SLACK_MIB = 96.0
RSS_CEILING_MIB = 4096.0
PROCESSES = ("router", "text-service", "audio-service", "image-service")


@dataclass
class Tally:
    outcomes: list[str] = field(default_factory=list)

    def failures(self) -> list[str]:
        return [o for o in self.outcomes if o.startswith(("failed", "error"))]


async def _request(client: httpx.AsyncClient, kind: str, i: int, audio: bytes) -> httpx.Response:
    if kind == "chat":
        body = {"messages": [{"role": "user", "content": f"Say a number near {i}."}], "max_tokens": 4}
        return await client.post("/v1/chat/completions", json=body)
    if kind == "completions":
        return await client.post("/v1/completions", json={"prompt": f"{i}, {i + 1},", "max_tokens": 4})
    if kind == "transcription":
        return await client.post("/v1/audio/transcriptions", files={"file": ("jfk.flac", audio)})
    if kind == "txt2img":
        body = {"prompt": f"image {i}", "width": 64, "height": 64, "sample_steps": 1, "seed": i}
        return await client.post("/v1/txt2img", json=body)
    return await client.get("/v1/models")


def _complete(kind: str, response: httpx.Response) -> bool:
    """The answer is whole and what was asked for (no data lost on the way)."""
    body = response.json()
    if kind == "chat":
        choice = body["choices"][0]
        return isinstance(choice["message"]["content"], str) and choice["finish_reason"] in ("stop", "length")
    if kind == "completions":
        return isinstance(body["choices"][0]["text"], str) and body["usage"]["completion_tokens"] <= 4
    if kind == "transcription":
        return "ask not" in body["text"].lower()
    if kind == "txt2img":
        return base64.b64decode(body["data"][0]["base64"]).startswith(b"\x89PNG\r\n\x1a\n")
    return len(body["data"]) == 4  # smollm2, whisper-tiny.en and the piper-joe voice, tiny-sd


async def _client(router: str, kinds_from: int, until: float, audio: bytes, tally_: Tally) -> None:
    async with httpx.AsyncClient(base_url=router, timeout=httpx.Timeout(120.0, connect=5.0)) as client:
        for i in range(10_000):  # bounded; the deadline ends it far sooner
            if time.monotonic() >= until:
                return
            kind = KINDS[(kinds_from + i) % len(KINDS)]
            try:
                response = await _request(client, kind, i, audio)
            except httpx.HTTPError as exc:
                tally_.outcomes.append(f"error:{kind}:{type(exc).__name__}")
                continue
            if response.status_code == 200:
                ok = _complete(kind, response)
                tally_.outcomes.append(f"ok:{kind}" if ok else f"failed:{kind}:incomplete")
            elif shed(response):
                tally_.outcomes.append(f"shed:{response.status_code}")
                await asyncio.sleep(float(response.headers["retry-after"]) / 4)  # a quick, impatient client
            else:
                error_of(response)
                tally_.outcomes.append(f"failed:{kind}:{response.status_code}")


async def _run(router: str, pids: dict[str, int], audio: bytes, seconds: float, clients: int, label: str) -> None:
    rss: list[dict[int, float]] = []
    tallies = []
    started = time.monotonic()
    for round_index in range(ROUNDS):
        round_tally = Tally()
        until = time.monotonic() + seconds
        # Each round's clients start where the last round's left off, so that every kind is some
        # client's first request even when a slow machine answers only a couple per round.
        starts = (round_index * clients + n for n in range(clients))
        await asyncio.wait_for(
            asyncio.gather(*(_client(router, start, until, audio, round_tally) for start in starts)), seconds + 300
        )
        tallies.append(round_tally)
        rss.append(rss_mib(pids.values()))
    outcomes = [o for t in tallies for o in t.outcomes]
    memory = ", ".join(f"{name} {rss[0][pid]:.0f}->{rss[-1][pid]:.0f} MiB" for name, pid in pids.items())
    SUMMARY.append(
        f"{label}: {len(outcomes)} requests from {clients} clients in {time.monotonic() - started:.0f} s "
        f"({ROUNDS} rounds of {seconds:.0f} s): {tally(o.rsplit(':', 1)[0] if o.startswith('ok') else o for o in outcomes)}; "
        f"RSS after round 1 -> {ROUNDS}: {memory}"
    )
    failures = [o for t in tallies for o in t.failures()]
    assert not failures, failures[:10]
    for kind in KINDS:
        assert f"ok:{kind}" in outcomes, f"no {kind} request succeeded: {tally(outcomes)}"
    for name, pid in pids.items():
        first, last = rss[0][pid], rss[-1][pid]
        assert last <= first * RSS_GROWTH_FACTOR + RSS_GROWTH_SLACK_MIB, (
            f"{name} grew from {first:.0f} to {last:.0f} MiB"
        )
        assert last < RSS_CEILING_MIB, f"{name} uses {last:.0f} MiB"


@pytest.fixture(scope="module")
def pids(router_url: str, supervisor: Supervisor) -> dict[str, int]:
    children = {c.spec.name: c.process.pid for c in supervisor.children}
    return {name: children[name] for name in PROCESSES}


async def test_mixed_load_short(router_url: str, pids: dict[str, int], shared_data: Path) -> None:
    audio = (shared_data / "jfk.flac").read_bytes()
    await _run(router_url, pids, audio, seconds=5.0, clients=3, label="load (short)")


@pytest.mark.soak
async def test_mixed_load_soak(router_url: str, pids: dict[str, int], shared_data: Path) -> None:
    audio = (shared_data / "jfk.flac").read_bytes()
    await _run(router_url, pids, audio, seconds=25.0, clients=4, label="load (soak)")
