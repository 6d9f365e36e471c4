"""What on-demand models cost: time to first token of a cold model (its load included) against a
warm one, and the swap between two text models with room for one, each against loading the same
GGUF directly with llama-cpp-python (load, then the first token) in the same run."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from nexa_cli.catalogue_cmds import build
from nexa_common import catalogue

from .harness import Stack, summary

MODELS = ("smollm2", "gemma3-270m")
PROMPT = "The capital of France is"
TIMEOUT = httpx.Timeout(600.0, connect=5.0)


def _gguf(name: str, cache: Path) -> Path:
    entry = catalogue.lookup(name)
    assert entry is not None
    if not catalogue.is_present(entry, cache):
        build(entry, cache)
    path = catalogue.resolve(name, cache).path
    return next(iter(sorted(path.glob("*.gguf")))) if path.is_dir() else path


def _direct(path: Path, n_ctx: int, threads: int) -> dict[str, float]:
    """llama-cpp-python alone: the load, then the first token of the same prompt."""
    from llama_cpp import Llama

    started = time.perf_counter()
    llm = Llama(model_path=str(path), n_ctx=n_ctx, n_threads=threads, verbose=False)
    loaded = time.perf_counter()
    try:
        next(iter(llm.create_completion(PROMPT, max_tokens=1, temperature=0, stream=True)))
        first = time.perf_counter()
    finally:
        llm.close()
    return {"load_s": loaded - started, "ttft_s": first - started}


def _ttft(client: httpx.Client, model: str) -> float:
    """Request to first streamed token, through the service (a load included when it needs one)."""
    body = {"model": model, "prompt": PROMPT, "max_tokens": 4, "temperature": 0, "stream": True}
    started = time.perf_counter()
    with client.stream("POST", "/v1/completions", json=body) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:])["choices"][0]["text"]:
                return time.perf_counter() - started
    raise RuntimeError(f"no token from {model}")


def measure(stack: Stack, cache: Path, n_ctx: int, threads: int, repetitions: int) -> dict[str, Any]:
    paths = {name: _gguf(name, cache) for name in MODELS}
    env = {
        "NEXA_TEXT_MODEL": MODELS[0],
        "NEXA_TEXT_MODELS": MODELS[1],
        "NEXA_TEXT_MAX_LOADED_MODELS": "1",
        "NEXA_TEXT_KEEP_ALIVE": "-1",
        "NEXA_TEXT_THREADS": str(threads),
    }
    url = stack.start("text-pool", "nexa_text", "NEXA_TEXT_", env)
    direct: dict[str, list[dict[str, float]]] = {name: [] for name in MODELS}
    cold, warm = [], []
    swaps: dict[str, list[float]] = {name: [] for name in MODELS}
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        for _ in range(repetitions):
            # Interleaved, so that the machine's load weighs on every path alike.
            for name in MODELS:
                direct[name].append(_direct(paths[name], n_ctx, threads))
            client.post("/v1/operator/models/unload", json={"model": MODELS[1]}).raise_for_status()
            cold.append(_ttft(client, MODELS[1]))  # loads gemma (smollm2 unloaded for room, if loaded)
            warm.append(_ttft(client, MODELS[1]))
            swaps[MODELS[0]].append(_ttft(client, MODELS[0]))  # unload gemma, load smollm2
            swaps[MODELS[1]].append(_ttft(client, MODELS[1]))  # and back
    direct_ttft = {name: summary([d["ttft_s"] for d in direct[name]]) for name in MODELS}
    direct_load = {name: summary([d["load_s"] for d in direct[name]]) for name in MODELS}
    cold_s, warm_s = summary(cold), summary(warm)
    return {
        "models": list(MODELS),
        "n_ctx": n_ctx,
        "threads": threads,
        "direct_load_s": direct_load,
        "direct_cold_ttft_s": direct_ttft,
        "service_cold_ttft_s": cold_s,
        "service_warm_ttft_s": warm_s,
        "swap_ttft_s": {name: summary(values) for name, values in swaps.items()},
        "cold_vs_direct_cold": cold_s["median"] / direct_ttft[MODELS[1]]["median"],
        "cold_vs_warm": cold_s["median"] / warm_s["median"],
        "swap_vs_direct_load": {
            name: summary(values)["median"] / direct_load[name]["median"] for name, values in swaps.items()
        },
        "swap_vs_direct_cold": {
            name: summary(values)["median"] / direct_ttft[name]["median"] for name, values in swaps.items()
        },
    }
