"""The embedding engine: an ONNX Runtime session and a Hugging Face tokenizer, from a folder that
`embedding_build` made (model.onnx, tokenizer.json, nexa_embedding.json).

ONNX Runtime was chosen on evidence (bench/REPORT.md, "Embeddings"): it gives the vectors of
sentence-transformers to a cosine of 1.0000 and runs the fused graph several times faster than
PyTorch and llama.cpp on CPU at batch 1 and 32.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

from nexa_common.catalogue import EMBEDDING_MANIFEST, ModelError
from nexa_common.kit.memory import release_freed_memory

from .embedding_build import MANIFEST_VERSION, MODEL_FILE, TOKENIZER_FILE


@dataclass(frozen=True)
class Manifest:
    dimensions: int
    max_tokens: int
    """The longest input (special tokens included) the model was trained on."""
    matryoshka_dimensions: tuple[int, ...]
    """Sizes the vectors may be shortened to (`dimensions`); empty: none."""

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            data = json.loads((folder / EMBEDDING_MANIFEST).read_text())
            if data.get("format") != MANIFEST_VERSION:
                raise ValueError(f"format {data.get('format')!r}, expected {MANIFEST_VERSION}")
            return cls(int(data["dimensions"]), int(data["max_tokens"]), tuple(data.get("matryoshka_dimensions", ())))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"'{folder.name}' is not an embedding model folder ({EMBEDDING_MANIFEST}: {exc})") from exc


class EmbeddingEngine:
    """A loaded embedding model. `embed` blocks (call it from a worker thread); the rest is cheap."""

    def __init__(self, folder: Path, *, n_threads: int, batch_size: int = 32) -> None:
        # tokenizers batches on a Rust thread pool sized from this variable when first used; unset,
        # it takes every core, not the service's thread setting.
        os.environ.setdefault("RAYON_NUM_THREADS", str(n_threads))
        self.manifest = Manifest.read(folder)
        self.dimensions = self.manifest.dimensions
        self.max_tokens = self.manifest.max_tokens
        self.batch_size = batch_size
        try:
            self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            options = ort.SessionOptions()
            # The text service's thread setting; one inter-op thread: the graph is a single chain.
            options.intra_op_num_threads = n_threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(str(folder / MODEL_FILE), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # ONNX Runtime and tokenizers raise their own types; the reason is in the text
            raise ModelError(f"Could not load the embedding model '{folder.name}': {exc}") from exc
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        self.vocab_size = self._tokenizer.get_vocab_size(with_added_tokens=True)
        # The special tokens wrapped around every input ([CLS] … [SEP] for BERT), from a one-word text.
        probe = self._tokenizer.encode("a")
        mask = probe.special_tokens_mask
        self._prefix = probe.ids[: _leading(mask)]
        self._suffix = probe.ids[len(probe.ids) - _leading(mask[::-1]) :]

    def tokenize(self, text: str, *, truncate: bool = False) -> list[int]:
        return self.tokenize_batch([text], truncate=truncate)[0]

    def tokenize_batch(self, texts: list[str], *, truncate: bool = False) -> list[list[int]]:
        """Token ids with the model's special tokens; over-long ones cut to `max_tokens` when `truncate`."""
        encoded = [e.ids for e in self._tokenizer.encode_batch(texts)]
        return [self._truncated(ids) if truncate else ids for ids in encoded]

    def wrap(self, ids: list[int], *, truncate: bool = False) -> list[int]:
        """Token ids given by a client (no special tokens) as the model takes them."""
        full = [*self._prefix, *ids, *self._suffix]
        return self._truncated(full) if truncate else full

    def _truncated(self, ids: list[int]) -> list[int]:
        if len(ids) <= self.max_tokens:
            return ids
        # As sentence-transformers truncates: the text is cut, the closing special tokens kept.
        keep = self.max_tokens - len(self._suffix)
        return [*ids[:keep], *self._suffix]

    def embed(self, inputs: list[list[int]]) -> np.ndarray:
        """Unit vectors, one row per input (float32). Inputs of similar length run together, so a
        short one is never padded to a long one's length more than the batch needs."""
        out = np.empty((len(inputs), self.dimensions), dtype=np.float32)
        order = sorted(range(len(inputs)), key=lambda i: len(inputs[i]))
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            width = max(len(inputs[i]) for i in chunk)
            ids = np.zeros((len(chunk), width), dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                ids[row, : len(inputs[i])] = inputs[i]
                mask[row, : len(inputs[i])] = 1
            (vectors,) = self._session.run(None, {"input_ids": ids, "attention_mask": mask})
            out[chunk] = vectors
        return out

    def close(self) -> None:
        # ONNX Runtime frees the session with its last reference, into glibc's heap, which keeps the
        # pages: untrimmed, the text service's RSS after each of 10 load/unload cycles grew from 465
        # to 589 MiB; trimmed it stays between 424 and 457 with no trend.
        del self._session
        release_freed_memory()


def _leading(mask: list[int]) -> int:
    count = 0
    for flag in mask:
        if not flag:
            break
        count += 1
    return count
