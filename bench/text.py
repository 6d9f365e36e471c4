"""Text: llama-cpp-python called directly vs the text service vs through the router (one stream;
concurrency is in peers.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from .harness import column, summary

PROMPT = "Once upon a time, in a small village by the sea, there lived"
MAX_TOKENS = 128


class DirectLlama:
    """The baseline: the same GGUF, context and threads, no server."""

    def __init__(self, model_path: Path, n_ctx: int, n_threads: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=n_threads, verbose=False)

    def stream(self) -> dict[str, float]:
        start = time.perf_counter()
        chunks: Any = self.llm.create_completion(PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True)
        # Counted as the HTTP paths count: chunks that carry text (the last one carries only the
        # finish reason).
        stamps = [time.perf_counter() for chunk in chunks if chunk["choices"][0]["text"]]
        return _stream_figures(start, stamps)

    def whole(self) -> dict[str, float]:
        start = time.perf_counter()
        out: Any = self.llm.create_completion(PROMPT, max_tokens=MAX_TOKENS, temperature=0)
        elapsed = time.perf_counter() - start
        return {
            "tokens_per_s": out["usage"]["completion_tokens"] / elapsed,
            "tokens": out["usage"]["completion_tokens"],
        }


def _stream_figures(start: float, stamps: list[float]) -> dict[str, float]:
    if len(stamps) < 2:
        return {"ttft_ms": (stamps[0] - start) * 1000 if stamps else float("nan"), "tokens": float(len(stamps))}
    return {
        "ttft_ms": (stamps[0] - start) * 1000,
        "decode_tokens_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "tokens": float(len(stamps)),
    }


class HttpText:
    """The same request over HTTP, to the service or to the router."""

    def __init__(self, base_url: str) -> None:
        self.client = httpx.Client(base_url=base_url, timeout=300)
        self.body = {"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0}

    def stream(self) -> dict[str, float]:
        start = time.perf_counter()
        stamps: list[float] = []
        with self.client.stream("POST", "/v1/completions", json={**self.body, "stream": True}) as response:
            response.raise_for_status()
            for line in response.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    chunk = json.loads(line[6:])
                    if chunk.get("choices") and chunk["choices"][0].get("text"):
                        stamps.append(time.perf_counter())
        return _stream_figures(start, stamps)

    def whole(self) -> dict[str, float]:
        start = time.perf_counter()
        response = self.client.post("/v1/completions", json=self.body)
        response.raise_for_status()
        elapsed = time.perf_counter() - start
        tokens = response.json()["usage"]["completion_tokens"]
        return {"tokens_per_s": tokens / elapsed, "tokens": tokens}


def single_stream(direct: DirectLlama, service_url: str, router_url: str, repetitions: int) -> dict[str, Any]:
    """(a) direct, (b) service, (c) router — interleaved so drift hits all three alike."""
    paths: dict[str, DirectLlama | HttpText] = {
        "direct": direct,
        "service": HttpText(service_url),
        "router": HttpText(router_url),
    }
    results: dict[str, dict[str, list[dict[str, float]]]] = {name: {"stream": [], "whole": []} for name in paths}
    for path in paths.values():  # warm-up, excluded
        path.stream()
        path.whole()
    for rep in range(repetitions):
        print(f"  single stream, round {rep + 1}/{repetitions}", flush=True)
        for name, path in paths.items():
            results[name]["stream"].append(path.stream())
            results[name]["whole"].append(path.whole())
    out: dict[str, Any] = {}
    for name, runs in results.items():
        out[name] = {
            "decode_tokens_per_s": summary(column(runs["stream"], "decode_tokens_per_s")),
            "ttft_ms": summary(column(runs["stream"], "ttft_ms")),
            "whole_tokens_per_s": summary(column(runs["whole"], "tokens_per_s")),
            "tokens": runs["whole"][0]["tokens"],
        }
    base = out["direct"]
    for name in ("service", "router"):
        out[name]["ratio_decode"] = out[name]["decode_tokens_per_s"]["median"] / base["decode_tokens_per_s"]["median"]
        out[name]["ratio_whole"] = out[name]["whole_tokens_per_s"]["median"] / base["whole_tokens_per_s"]["median"]
        out[name]["ttft_overhead_ms"] = out[name]["ttft_ms"]["median"] - base["ttft_ms"]["median"]
    return out
