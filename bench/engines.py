"""How the concurrency design was chosen, measured in-process (no HTTP): llama-cpp-python called
directly for one stream (the baseline), the batched engine at 1, 4 and 8 streams, and the other
option, two model instances with the threads split between them, at 2 streams."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .harness import summary

PROMPT = "Once upon a time, in a small village by the sea, there lived"
MAX_TOKENS = 64


def compare(model_path: Path, n_ctx: int, threads: int, repetitions: int) -> dict[str, Any]:
    from llama_cpp import Llama

    from nexa_text.batched_engine import BatchedEngine
    from nexa_text.engine import Sampling, Sequence

    direct = Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=threads, verbose=False)
    split = max(1, threads // 2)
    instances = [Llama(model_path=str(model_path), n_ctx=n_ctx, n_threads=split, verbose=False) for _ in range(2)]
    batched = BatchedEngine(model_path, n_ctx=n_ctx, n_threads=threads, n_batch=512, n_gpu_layers=0, slots=8)
    prompt = batched.tokenize(PROMPT, add_bos=True, special=True)

    def concurrently(jobs: list[Callable[[], int]]) -> float:
        counts: list[int] = []
        workers = [threading.Thread(target=lambda job=job: counts.append(job())) for job in jobs]
        start = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        return sum(counts) / (time.perf_counter() - start)

    def completion(llm: Any) -> int:
        return int(llm.create_completion(PROMPT, max_tokens=MAX_TOKENS, temperature=0)["usage"]["completion_tokens"])

    def sequence() -> int:
        return sum(1 for _ in batched.generate(Sequence(prompt, MAX_TOKENS, Sampling(temperature=0))))

    paths: dict[str, Callable[[], float]] = {
        "direct, 1 stream": lambda: concurrently([lambda: completion(direct)]),
        "batched engine, 1 stream": lambda: concurrently([sequence]),
        "batched engine, 4 streams": lambda: concurrently([sequence] * 4),
        "batched engine, 8 streams": lambda: concurrently([sequence] * 8),
        f"2 instances × {split} thread(s), 2 streams": lambda: concurrently(
            [_bound(completion, llm) for llm in instances]
        ),
    }
    try:
        for measure in paths.values():  # warm-up, excluded
            measure()
        runs: dict[str, list[float]] = {name: [] for name in paths}
        for rep in range(repetitions):
            print(f"  engines, round {rep + 1}/{repetitions}", flush=True)
            for name, measure in paths.items():
                runs[name].append(measure())
    finally:
        batched.close()
        direct.close()
        for llm in instances:
            llm.close()
    base = summary(runs["direct, 1 stream"])["median"]
    return {
        "max_tokens": MAX_TOKENS,
        "threads": threads,
        "paths": {
            name: {"tokens_per_s": summary(values), "ratio_to_direct": summary(values)["median"] / base}
            for name, values in runs.items()
        },
    }


def _bound(fn: Callable[[Any], int], arg: Any) -> Callable[[], int]:
    return lambda: fn(arg)
