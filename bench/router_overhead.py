"""What the router adds to a request whose upstream answers instantly, at 1 and 50 concurrent clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from .harness import percentile

BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1}


async def _latencies(url: str, clients: int, requests_per_client: int) -> list[float]:
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> list[float]:
            out = []
            for _ in range(requests_per_client):
                start = time.perf_counter()
                response = await client.post("/v1/chat/completions", json=BODY)
                out.append(time.perf_counter() - start)
                response.raise_for_status()
            return out

        await asyncio.gather(*(worker() for _ in range(clients)))  # warm-up: connections, caches
        per_worker = await asyncio.gather(*(worker() for _ in range(clients)))
    return [value for values in per_worker for value in values]


def measure(upstream_url: str, router_url: str, levels: tuple[int, ...] = (1, 50), total: int = 2000) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for clients in levels:
        per_client = max(20, total // clients)
        # Alternate the two paths in halves so background drift hits both.
        direct = asyncio.run(_latencies(upstream_url, clients, per_client // 2))
        routed = asyncio.run(_latencies(router_url, clients, per_client // 2))
        direct += asyncio.run(_latencies(upstream_url, clients, per_client // 2))
        routed += asyncio.run(_latencies(router_url, clients, per_client // 2))
        row = {}
        for name, q in (("p50", 0.5), ("p99", 0.99)):
            d, r = percentile(direct, q) * 1000, percentile(routed, q) * 1000
            row[f"direct_{name}_ms"], row[f"router_{name}_ms"], row[f"added_{name}_ms"] = d, r, r - d
        row["requests"] = len(direct) + len(routed)
        out[str(clients)] = row
    return out
