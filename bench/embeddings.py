"""Embeddings: sentence-transformers called directly (the baseline) vs the ONNX Runtime engine the
text service uses, called directly, vs the text service vs the router, at batch 1 and 32; then 32
concurrent one-sentence clients (batched by the service) vs the same 32 requests one after another.

`compare(cache_dir, repetitions, threads=None)` is what the benchmark calls (or, alone:
`python -m bench.embeddings [REPETITIONS] [THREADS]`, cache from NEXA_CACHE). The model is built
first if the cache lacks it. Every path runs once per round, the rounds interleaved.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from nexa_cli.catalogue_cmds import build
from nexa_cli.supervisor import Supervisor
from nexa_common import catalogue
from nexa_common.settings import physical_cores

from .harness import Stack, summary

MODEL = "all-minilm-l6-v2"
_SUBJECTS = ("The cat", "A young engineer", "Our quarterly report", "The new library downtown",
             "My grandmother's recipe", "This open-source project", "The river near the old mill",
             "A sudden thunderstorm")  # fmt: skip
_PREDICATES = ("sat quietly on the warm windowsill all afternoon",
               "explained how the scheduler batches concurrent requests",
               "shows revenue growing faster than anyone expected this year",
               "opens early on weekends and has a quiet reading room",
               "needs two cups of flour, a pinch of salt and patience")  # fmt: skip
SENTENCES = [f"{_SUBJECTS[i % 8]} {_PREDICATES[i % 5]}." for i in range(32)]
"""32 distinct sentences of 10 to 16 tokens, retrieval-chunk sized."""
SINGLE_CALLS = 16
"""Batch-1 figure: this many one-sentence calls in a row."""
BATCH_CALLS = 3
"""Batch-32 figure: this many 32-sentence calls in a row."""
CLIENTS = 32


def compare(cache_dir: Path, repetitions: int, threads: int | None = None) -> dict[str, Any]:
    threads = threads or physical_cores()
    started = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "load_average": os.getloadavg()}
    entry = catalogue.lookup(MODEL)
    assert entry is not None
    if not catalogue.is_present(entry, cache_dir):
        build(entry, cache_dir)
    folder = catalogue.resolve(MODEL, cache_dir).path
    direct = direct_paths(folder, threads)
    # The chat model and the embedding model in one text pool, as `nexa server smollm2 all-minilm-l6-v2`.
    env = {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_MODELS": MODEL, "NEXA_CACHE": str(cache_dir),
           "NEXA_TEXT_THREADS": str(threads)}  # fmt: skip
    with tempfile.TemporaryDirectory() as logs, Supervisor(Path(logs)) as supervisor:
        stack = Stack(supervisor)
        service_url = stack.start("text", "nexa_text", "NEXA_TEXT_", env)
        router_url = stack.start("router", "nexa_router", "NEXA_ROUTER_", {"NEXA_ROUTER_TEXT_URL": service_url})
        with (
            httpx.Client(base_url=service_url, timeout=300) as service,
            httpx.Client(base_url=router_url, timeout=300) as router,
        ):
            paths: dict[str, Callable[[list[str]], Any]] = {
                **direct,
                "text service": lambda texts: _post(service, texts),
                "router → text service": lambda texts: _post(router, texts),
            }
            rates = _rates(paths, repetitions)
            concurrency = _concurrency(router_url, service_url, max(2, repetitions // 2))
        memory = stack.memory()
    base = {batch: rates["sentence-transformers, direct"][batch]["median"] for batch in ("1", "32")}
    return {
        **started,
        "model": MODEL,
        "threads": threads,
        "repetitions": repetitions,
        "sentences": len(SENTENCES),
        "paths": {
            name: {
                batch: {"embeddings_per_s": rate, "ratio_to_sentence_transformers": rate["median"] / base[batch]}
                for batch, rate in by_batch.items()
            }
            for name, by_batch in rates.items()
        },
        "concurrency": concurrency,
        "peak_rss_mb": memory,
    }


def direct_paths(folder: Path, threads: int) -> dict[str, Callable[[list[str]], Any]]:
    """The two libraries, in this process: sentence-transformers on the wheel's own folder, and the
    service's engine on the built model (tokenising included, as the service does)."""
    import torch
    from sentence_transformers import SentenceTransformer

    from nexa_text.embedding_build import MINILM_WHEEL
    from nexa_text.embedding_engine import EmbeddingEngine

    torch.set_num_threads(threads)
    archive = catalogue.wheel_path(MINILM_WHEEL)
    assert archive is not None
    with tempfile.TemporaryDirectory(prefix="bench-minilm-") as unpacked:  # loaded into memory, then removed
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked)
        st = SentenceTransformer(unpacked, device="cpu")
    engine = EmbeddingEngine(folder, n_threads=threads, batch_size=32)
    return {
        "sentence-transformers, direct": lambda texts: st.encode(texts, normalize_embeddings=True, batch_size=32),
        "ONNX Runtime engine, direct": lambda texts: engine.embed(engine.tokenize_batch(texts)),
    }


def _post(client: httpx.Client, texts: list[str]) -> Any:
    response = client.post("/v1/embeddings", json={"model": MODEL, "input": texts})
    response.raise_for_status()
    return response.content


def _rates(paths: dict[str, Callable[[list[str]], Any]], repetitions: int) -> dict[str, dict[str, dict[str, float]]]:
    def batch_1(embed: Callable[[list[str]], Any]) -> float:
        start = time.perf_counter()
        for text in SENTENCES[:SINGLE_CALLS]:
            embed([text])
        return SINGLE_CALLS / (time.perf_counter() - start)

    def batch_32(embed: Callable[[list[str]], Any]) -> float:
        start = time.perf_counter()
        for _ in range(BATCH_CALLS):
            embed(SENTENCES)
        return BATCH_CALLS * len(SENTENCES) / (time.perf_counter() - start)

    for embed in paths.values():  # warm-up, excluded
        batch_1(embed)
        batch_32(embed)
    runs: dict[str, dict[str, list[float]]] = {name: {"1": [], "32": []} for name in paths}
    for rep in range(repetitions):
        print(f"  embeddings, round {rep + 1}/{repetitions}", flush=True)
        for name, embed in paths.items():
            runs[name]["1"].append(batch_1(embed))
            runs[name]["32"].append(batch_32(embed))
    return {name: {batch: summary(values) for batch, values in by.items()} for name, by in runs.items()}


def _concurrency(router_url: str, service_url: str, repetitions: int) -> dict[str, Any]:
    """32 one-sentence clients at once vs the same 32 requests one after another, through the router;
    engine calls counted from the service's metrics."""

    def batches() -> float:
        page = httpx.get(service_url + "/metrics", timeout=30).text
        return sum(
            float(line.rsplit(" ", 1)[1])
            for line in page.splitlines()
            if line.startswith("nexa_text_embedding_batches_total")
        )

    clients = [httpx.Client(base_url=router_url, timeout=300) for _ in range(CLIENTS)]

    def concurrent() -> dict[str, float]:
        for client in clients:  # connected beforehand, so the requests leave together
            client.get("/health")
        gate = threading.Barrier(CLIENTS + 1)
        failures: list[int] = []

        def one(i: int) -> None:
            gate.wait(timeout=60)
            if clients[i].post("/v1/embeddings", json={"model": MODEL, "input": SENTENCES[i]}).status_code != 200:
                failures.append(i)

        workers = [threading.Thread(target=one, args=(i,)) for i in range(CLIENTS)]
        for worker in workers:
            worker.start()
        before = batches()
        gate.wait(timeout=60)
        start = time.perf_counter()
        for worker in workers:
            worker.join(timeout=300)
        elapsed = time.perf_counter() - start
        return {"embeddings_per_s": CLIENTS / elapsed, "engine_calls": batches() - before, "errors": len(failures)}

    def sequential() -> dict[str, float]:
        before = batches()
        start = time.perf_counter()
        errors = sum(
            clients[0].post("/v1/embeddings", json={"model": MODEL, "input": text}).status_code != 200
            for text in SENTENCES
        )
        elapsed = time.perf_counter() - start
        return {"embeddings_per_s": CLIENTS / elapsed, "engine_calls": batches() - before, "errors": errors}

    try:
        concurrent(), sequential()  # warm-up
        runs: dict[str, list[dict[str, float]]] = {"concurrent": [], "sequential": []}
        for _ in range(repetitions):
            runs["concurrent"].append(concurrent())
            runs["sequential"].append(sequential())
    finally:
        for client in clients:
            client.close()
    out: dict[str, Any] = {
        kind: {key: summary([r[key] for r in rows]) for key in ("embeddings_per_s", "engine_calls", "errors")}
        for kind, rows in runs.items()
    }
    out["speedup"] = out["concurrent"]["embeddings_per_s"]["median"] / out["sequential"]["embeddings_per_s"]["median"]
    out["clients"] = CLIENTS
    return out


if __name__ == "__main__":
    from nexa_common.settings import default_cache_dir

    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    print(json.dumps(compare(default_cache_dir(), reps, int(sys.argv[2]) if len(sys.argv) > 2 else None), indent=2))
