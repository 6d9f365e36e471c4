"""What every benchmark uses: statistics, the processes under test, and their memory."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port, python_module


def summary(values: list[float]) -> dict[str, float]:
    """Median and spread (min, max, p99 where there are enough samples)."""
    if not values:
        return {}
    ordered = sorted(values)
    out = {"median": statistics.median(ordered), "min": ordered[0], "max": ordered[-1], "n": float(len(ordered))}
    if len(ordered) >= 20:
        out["p99"] = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return out


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] if ordered else float("nan")


def repeat(fn: Callable[[], dict[str, float]], repetitions: int, warmup: int = 1) -> list[dict[str, float]]:
    """Run `fn` warmup + repetitions times; the warm-up runs are dropped."""
    for _ in range(warmup):
        fn()
    return [fn() for _ in range(repetitions)]


def column(runs: list[dict[str, float]], key: str) -> list[float]:
    return [r[key] for r in runs if key in r]


def peak_rss_mb(pid: int) -> float:
    """The kernel's high-water mark of the process's resident memory (VmHWM), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return psutil.Process(pid).memory_info().rss / 2**20


@dataclass
class Stack:
    """The processes under test: services and a router, started like `nexa server` starts them."""

    supervisor: Supervisor
    urls: dict[str, str] = field(default_factory=dict)
    pids: dict[str, int] = field(default_factory=dict)

    def start(self, name: str, module: str, env_prefix: str, env: dict[str, str], timeout_s: float = 300) -> str:
        port = free_port()
        spec = ProcessSpec(
            name,
            python_module(module),
            port,
            {
                f"{env_prefix}HOST": "127.0.0.1",
                f"{env_prefix}PORT": str(port),
                f"{env_prefix}LOG_LEVEL": "warning",
                **env,
            },
        )
        child = self.supervisor.start(spec)
        self.supervisor.wait_ready(child, timeout_s)
        self.urls[name], self.pids[name] = spec.url, child.process.pid
        return spec.url

    def memory(self) -> dict[str, float]:
        return {name: round(peak_rss_mb(pid), 1) for name, pid in self.pids.items()}


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result
