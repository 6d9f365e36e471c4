"""Text serving against its peers, side by side in one run: llama-server (`-np 8`),
llama-cpp-python's own server, and our router in front of the text service (its default
engine), all on the same GGUF, threads and llama.cpp release.

Rounds are interleaved (each round visits every server at each concurrency), so load from
elsewhere on the machine hits all of them alike. Then the same with one CPU-bound process at
nice 10 beside them (a laptop compiling something, a pod sharing its node), and how fast each
gets back to its quiet rate once that process stops. Memory: our default engine's text service
beside the one-sequence engine's, after the same load.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port

from .harness import Stack, peak_rss_mb, percentile, summary
from .peer_builds import llama_cpp_version, llama_server, peers_python

CHAT = [{"role": "user", "content": "Write a long story about a dragon who learns to bake bread."}]
MAX_TOKENS = 128
LEVELS = (1, 4, 8)
LLAMA_SERVER_SLOTS = 8
BUSY_TOKENS = 48
"""Tokens per answer while the machine is busy (llama-server may make ~1 token/s then)."""
BUSY_DEADLINE_S = 150.0
"""A busy-machine answer is cut off after this long; its rate counts what arrived. (Cutting off
llama-cpp-python's server mid-stream can leave its lock held, hanging every later request: the
answers are kept short enough to finish instead.)"""
RECOVERY_WINDOW_S = 20.0


QUIET_DEADLINE_S = 600.0
"""A quiet-round answer is cut off after this long: only a safety net (see BUSY_DEADLINE_S)."""
BUSY_SERVERS = ("llama-server", "llama-cpp-python", "ours")


@dataclass
class Server:
    name: str
    url: str
    model: str
    pid: int
    """The process whose memory counts (for ours: the text service, not its router)."""


def start_servers(supervisor: Supervisor, stack: Stack, gguf: Path, threads: int, n_ctx: int) -> dict[str, Server]:
    """llama-server, llama-cpp-python's server and our router + text service (default settings)."""
    release = llama_cpp_version()
    servers: dict[str, Server] = {}

    port = free_port()
    binary = llama_server(release)
    argv = [
        str(binary),
        *("-m", str(gguf), "-t", str(threads), "-c", str(n_ctx), "-np", str(LLAMA_SERVER_SLOTS)),
        *("--kv-unified", "--host", "127.0.0.1", "--port", str(port), "--no-webui"),
    ]
    child = supervisor.start(ProcessSpec("llama-server", argv, port, ready_path="/health"))
    supervisor.wait_ready(child, 300)
    servers["llama-server"] = Server("llama-server", child.spec.url, "smollm2", child.process.pid)

    port = free_port()
    argv = [
        str(peers_python(release)),
        *("-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2"),
        *("--n_threads", str(threads), "--n_ctx", str(n_ctx), "--host", "127.0.0.1", "--port", str(port)),
        # Its default lets a new request cut off the stream in progress; queue them instead.
        *("--interrupt_requests", "False"),
    ]
    child = supervisor.start(ProcessSpec("llama-cpp-python-server", argv, port, ready_path="/v1/models"))
    supervisor.wait_ready(child, 300)
    servers["llama-cpp-python"] = Server("llama-cpp-python", child.spec.url, "smollm2", child.process.pid)

    # Ours: the default settings, and the one-sequence engine beside it (the old default, and the
    # memory baseline), each behind its own router.
    for name, env in (("ours", {}), ("ours-one-sequence", {"NEXA_TEXT_MAX_CONCURRENCY": "1"})):
        text = stack.start(f"peers-text-{name}", "nexa_text", "NEXA_TEXT_", {"NEXA_TEXT_MODEL": "smollm2", **env})
        router = stack.start(f"peers-router-{name}", "nexa_router", "NEXA_ROUTER_", {"NEXA_ROUTER_TEXT_URL": text})
        servers[name] = Server(name, router, "smollm2", stack.pids[f"peers-text-{name}"])
    return servers


async def _chat(client: httpx.AsyncClient, server: Server, max_tokens: int, deadline_s: float) -> dict[str, float]:
    """One streamed chat answer: time to its first text, and how many tokens came in what time."""
    body = {
        "model": server.model,
        "messages": CHAT,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    start = time.perf_counter()
    try:
        return await _read_chat(client, body, start, deadline_s)
    except httpx.HTTPError as exc:  # a server that drops a stream: an error, not a failed round
        print(f"    {server.name}: {type(exc).__name__}: {exc}", flush=True)
        return {"error": -1.0}


async def _read_chat(
    client: httpx.AsyncClient, body: dict[str, Any], start: float, deadline_s: float
) -> dict[str, float]:
    first: float | None = None
    chunks = 0
    usage_tokens: int | None = None
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            return {"error": float(response.status_code)}
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                usage_tokens = chunk["usage"].get("completion_tokens")
            choices = chunk.get("choices") or []
            if choices and (choices[0].get("delta") or {}).get("content"):
                chunks += 1
                if first is None:
                    first = time.perf_counter()
            if time.perf_counter() - start > deadline_s:
                break  # cut off: count what arrived
    end = time.perf_counter()
    # A server's own count when it sends one (a streamed chunk may carry more than one token).
    tokens = usage_tokens if usage_tokens is not None and chunks and end - start <= deadline_s else chunks
    return {"seconds": end - start, "ttft_s": (first or end) - start, "tokens": float(tokens)}


async def _round(server: Server, streams: int, max_tokens: int, deadline_s: float = 600.0) -> dict[str, Any]:
    limits = httpx.Limits(max_connections=streams, max_keepalive_connections=streams)
    async with httpx.AsyncClient(base_url=server.url, timeout=deadline_s + 60, limits=limits) as client:
        start = time.perf_counter()
        runs = await asyncio.gather(*(_chat(client, server, max_tokens, deadline_s) for _ in range(streams)))
        wall = time.perf_counter() - start
    ok = [r for r in runs if "error" not in r]
    return {
        "wall_s": wall,
        "tokens": sum(r["tokens"] for r in ok),
        "ttft_s": [r["ttft_s"] for r in ok],
        "errors": len(runs) - len(ok),
    }


def _rate(rnd: dict[str, Any]) -> float:
    return float(rnd["tokens"] / rnd["wall_s"]) if rnd["wall_s"] > 0 else 0.0


def quiet(servers: dict[str, Server], repetitions: int, max_tokens: int) -> dict[str, Any]:
    for server in servers.values():  # warm-up, excluded
        asyncio.run(_round(server, 1, max_tokens, QUIET_DEADLINE_S))
        asyncio.run(_round(server, LEVELS[-1], max_tokens, QUIET_DEADLINE_S))
    rounds: dict[str, dict[int, list[dict[str, Any]]]] = {name: {n: [] for n in LEVELS} for name in servers}
    for rep in range(repetitions):
        for streams in LEVELS:
            for name, server in servers.items():
                print(f"  peers, quiet: {name}, {streams} streams, round {rep + 1}/{repetitions}", flush=True)
                rounds[name][streams].append(asyncio.run(_round(server, streams, max_tokens, QUIET_DEADLINE_S)))
    out: dict[str, Any] = {}
    for name in servers:
        rows = {}
        for streams in LEVELS:
            done = rounds[name][streams]
            rows[str(streams)] = {
                "aggregate_tokens_per_s": summary([_rate(r) for r in done]),
                "ttft_p50_s": percentile([t for r in done for t in r["ttft_s"]], 0.5),
                "tokens_per_answer": statistics.median(r["tokens"] / streams for r in done),
                "errors": sum(r["errors"] for r in done),
            }
        out[name] = rows
    return out


class Burner:
    """One CPU-bound process at nice 10 (the kind of neighbour that makes llama.cpp's threads
    wait on each other), started and stopped by its PID."""

    def __init__(self) -> None:
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Burner:
        self.process = subprocess.Popen(
            ["nice", "-n", "10", sys.executable, "-c", "while True: pass"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def __exit__(self, *exc: object) -> None:
        self.stop()


def busy(
    all_servers: dict[str, Server], repetitions: int, quiet_single: dict[str, float], busy_tokens: int
) -> dict[str, Any]:
    """One stream at a time with the burner running, then our recovery once it stops."""
    servers = {name: all_servers[name] for name in BUSY_SERVERS}
    out: dict[str, Any] = {}
    with Burner() as burner:
        time.sleep(1.0)
        first: dict[str, float] = {}
        for name, server in servers.items():  # the first answer: includes noticing the load
            first[name] = _rate(asyncio.run(_round(server, 1, busy_tokens, BUSY_DEADLINE_S)))
        rates: dict[str, list[float]] = {name: [] for name in servers}
        for rep in range(repetitions):
            for name, server in servers.items():
                print(f"  peers, busy: {name}, round {rep + 1}/{repetitions}", flush=True)
                rates[name].append(_rate(asyncio.run(_round(server, 1, busy_tokens, BUSY_DEADLINE_S))))
        burner.stop()
        stopped = time.perf_counter()
        recovery = _recovery(servers["ours"], quiet_single["ours"], stopped)
    for name in servers:
        rate = summary(rates[name])
        out[name] = {
            "tokens_per_s": rate,
            "first_answer_tokens_per_s": first[name],
            "ratio_to_quiet_single": rate["median"] / quiet_single[name] if quiet_single[name] else float("nan"),
        }
    out["ours"]["recovery"] = recovery
    return out


def _recovery(server: Server, quiet_rate: float, stopped: float) -> dict[str, Any]:
    """Short answers one after another once the burner is gone: when is the rate back to 90% of
    the quiet one?"""
    series: list[tuple[float, float]] = []
    back_at: float | None = None
    while time.perf_counter() - stopped < RECOVERY_WINDOW_S:
        rnd = asyncio.run(_round(server, 1, 32, BUSY_DEADLINE_S))
        at = time.perf_counter() - stopped
        series.append((round(at, 2), round(_rate(rnd), 1)))
        if back_at is None and _rate(rnd) >= 0.9 * quiet_rate * _short_answer_factor(rnd):
            back_at = at
    return {"seconds_to_90pct": back_at, "series": series}


def _short_answer_factor(rnd: dict[str, Any]) -> float:
    # A 32-token answer spends relatively more of its time before the first token than a 128-token
    # one; the quiet reference is the 128-token rate, so allow for the time to first token.
    ttft = rnd["ttft_s"][0] if rnd["ttft_s"] else 0.0
    return max(0.5, 1.0 - ttft / rnd["wall_s"]) if rnd["wall_s"] > 0 else 1.0


def memory(servers: dict[str, Server]) -> dict[str, Any]:
    """Peak RSS (VmHWM) of our default text service and of the one-sequence engine's, after the
    same quiet rounds (same requests, same run)."""
    default_mb = peak_rss_mb(servers["ours"].pid)
    one_mb = peak_rss_mb(servers["ours-one-sequence"].pid)
    return {
        "default_peak_rss_mb": round(default_mb, 1),
        "one_sequence_peak_rss_mb": round(one_mb, 1),
        "ratio": default_mb / one_mb,
        "llama_server_peak_rss_mb": round(peak_rss_mb(servers["llama-server"].pid), 1),
        "llama_cpp_python_peak_rss_mb": round(peak_rss_mb(servers["llama-cpp-python"].pid), 1),
    }


def measure(
    supervisor: Supervisor, stack: Stack, gguf: Path, threads: int, n_ctx: int, repetitions: int, quick: bool = False
) -> dict[str, Any]:
    """`quick`: shorter answers too (a smoke run of the harness, not figures to quote)."""
    max_tokens, busy_tokens = (32, 16) if quick else (MAX_TOKENS, BUSY_TOKENS)
    servers = start_servers(supervisor, stack, gguf, threads, n_ctx)
    results: dict[str, Any] = {
        "llama_cpp_python": llama_cpp_version(),
        "threads": threads,
        "n_ctx": n_ctx,
        "max_tokens": max_tokens,
        "busy_tokens": busy_tokens,
        "llama_server_slots": LLAMA_SERVER_SLOTS,
    }
    step: Callable[[], Any]
    for key, step in (
        ("quiet", lambda: quiet(servers, repetitions, max_tokens)),
        ("memory", lambda: memory(servers)),
        (
            "busy",
            lambda: busy(
                servers,
                max(2, repetitions // 2),
                {n: results["quiet"][n]["1"]["aggregate_tokens_per_s"]["median"] for n in BUSY_SERVERS},
                busy_tokens,
            ),
        ),
    ):
        try:
            results[key] = step()
        except Exception as exc:  # one part failing keeps the others
            results[key] = {"error": f"{type(exc).__name__}: {exc}"}
            print(f"  peers {key} failed: {results[key]['error']}", flush=True)
    return results
