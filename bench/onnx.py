"""Text on ONNX Runtime vs GGUF: the same SmolLM2 weights, prompt and greedy decoding, called
directly (onnxruntime-genai vs llama-cpp-python) and through the text service.

`compare(cache_dir, repetitions, threads=None)` is what the benchmark calls (or, alone:
`python -m bench.onnx [REPETITIONS] [THREADS]`, cache from NEXA_CACHE). Each direct run happens in
a fresh process (`python -m bench.onnx direct ...`), so the peak memory it reports belongs to that
engine alone; the services are started one after the other for the same reason.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from nexa_cli.catalogue_cmds import build
from nexa_cli.supervisor import Supervisor
from nexa_common import catalogue
from nexa_common.settings import physical_cores

from .harness import Stack, column, peak_rss_mb, repeat, summary

PROMPT = "Once upon a time, in a small village by the sea, there lived"
MAX_TOKENS = 128
MODELS = {"gguf": "smollm2", "onnx": "smollm2-onnx"}


def compare(cache_dir: Path, repetitions: int, threads: int | None = None) -> dict[str, Any]:
    """tokens/s and peak memory for GGUF and ONNX, direct and through the service (builds the
    ONNX model first if the cache lacks it, about a minute). `threads`: decoding threads for both
    (default: the physical cores, as the service uses)."""
    threads = threads or physical_cores()
    onnx_entry = catalogue.lookup(MODELS["onnx"])
    assert onnx_entry is not None
    if not catalogue.is_present(onnx_entry, cache_dir):
        build(onnx_entry, cache_dir)
    paths = {backend: catalogue.resolve(name, cache_dir).path for backend, name in MODELS.items()}
    results: dict[str, Any] = {
        "prompt": PROMPT,
        "max_tokens": MAX_TOKENS,
        "threads": threads,
        "repetitions": repetitions,
        "direct": {b: _direct_in_subprocess(b, paths[b], repetitions, threads) for b in MODELS},
        "service": {b: _through_service(b, cache_dir, repetitions, threads) for b in MODELS},
    }
    results["onnx_vs_gguf"] = {
        where: _ratio(results[where]["onnx"], results[where]["gguf"]) for where in ("direct", "service")
    }
    return results


def _ratio(onnx: dict[str, Any], gguf: dict[str, Any]) -> float | None:
    a, b = onnx.get("tokens_per_s", {}).get("median"), gguf.get("tokens_per_s", {}).get("median")
    return round(a / b, 3) if a and b else None


def _direct_in_subprocess(backend: str, path: Path, repetitions: int, threads: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.onnx", "direct", backend, str(path), str(repetitions), str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=Path(__file__).parents[1])
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _through_service(backend: str, cache_dir: Path, repetitions: int, threads: int) -> dict[str, Any]:
    env = {"NEXA_TEXT_MODEL": MODELS[backend], "NEXA_CACHE": str(cache_dir), "NEXA_TEXT_THREADS": str(threads)}
    with tempfile.TemporaryDirectory() as logs, Supervisor(Path(logs)) as supervisor:
        stack = Stack(supervisor)
        url = stack.start("text", "nexa_text", "NEXA_TEXT_", env)
        body = {"prompt": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0}
        with httpx.Client(base_url=url, timeout=300) as client:

            def once() -> dict[str, float]:
                start = time.perf_counter()
                response = client.post("/v1/completions", json=body)
                response.raise_for_status()
                tokens = response.json()["usage"]["completion_tokens"]
                return {"tokens_per_s": tokens / (time.perf_counter() - start), "tokens": tokens}

            runs = repeat(once, repetitions)
        return {
            "tokens_per_s": summary(column(runs, "tokens_per_s")),
            "tokens": summary(column(runs, "tokens")),
            "peak_rss_mb": stack.memory()["text"],
        }


# --- the direct runs, each in its own process -------------------------------------------------


def _direct_gguf(path: Path, threads: int) -> tuple[Any, Any]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(path), n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)

    def stamps() -> list[float]:
        chunks: Any = llm.create_completion(PROMPT, max_tokens=MAX_TOKENS, temperature=0, stream=True)
        # The last chunk carries only the finish reason.
        return [time.perf_counter() for chunk in chunks if chunk["choices"][0]["finish_reason"] is None]

    return llm, stamps


def _direct_onnx(path: Path, threads: int) -> tuple[Any, Any]:
    import numpy as np
    import onnxruntime_genai as og

    config = og.Config(str(path))
    options = {"intra_op_num_threads": threads, "inter_op_num_threads": 1}
    config.overlay(json.dumps({"model": {"decoder": {"session_options": options}}}))
    model = og.Model(config)
    tokenizer = og.Tokenizer(model)
    prompt = np.asarray(tokenizer.encode(PROMPT), dtype=np.int32)

    def stamps() -> list[float]:
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=len(prompt) + MAX_TOKENS, do_sample=False)
        generator = og.Generator(model, params)
        generator.append_tokens(prompt)
        out: list[float] = []
        while not generator.is_done() and len(out) < MAX_TOKENS:
            generator.generate_next_token()
            out.append(time.perf_counter())
        return out

    return model, stamps


def _direct(backend: str, path: Path, repetitions: int, threads: int) -> dict[str, Any]:
    started = time.perf_counter()
    _engine, stamps = (_direct_gguf if backend == "gguf" else _direct_onnx)(path, threads)
    load_s = time.perf_counter() - started

    def once() -> dict[str, float]:
        start = time.perf_counter()
        times = stamps()
        figures = {"tokens_per_s": len(times) / (times[-1] - start), "tokens": float(len(times))}
        if len(times) > 1:
            figures["decode_tokens_per_s"] = (len(times) - 1) / (times[-1] - times[0])
            figures["ttft_ms"] = (times[0] - start) * 1000
        return figures

    runs = repeat(once, repetitions)
    return {
        "load_s": round(load_s, 3),
        **{key: summary(column(runs, key)) for key in ("tokens_per_s", "decode_tokens_per_s", "ttft_ms", "tokens")},
        "peak_rss_mb": round(peak_rss_mb(os.getpid()), 1),
    }


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "direct":
        print(json.dumps(_direct(sys.argv[2], Path(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]))))
    else:
        from nexa_common.settings import default_cache_dir

        repetitions = int(sys.argv[1]) if len(sys.argv) > 1 else 3
        threads = int(sys.argv[2]) if len(sys.argv) > 2 else None
        print(json.dumps(compare(default_cache_dir(), repetitions, threads), indent=2))
