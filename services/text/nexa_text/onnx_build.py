"""Builds ONNX Runtime GenAI models from GGUF ones, offline: the `smollm2-onnx` catalogue model.

No ONNX model can be downloaded here, but transformers reads a GGUF (dequantised to float32),
and onnxruntime-genai's model builder turns a transformers folder into an int4 CPU model.
`nexa pull smollm2-onnx` calls `build_smollm2_onnx` with the catalogue's cache path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nexa_common import catalogue
from nexa_common.catalogue import ModelError, ModelNotAvailable
from nexa_common.settings import default_cache_dir

SOURCE_MODEL = "smollm2"
# The files the engine needs; a build that lacks one is a failed build.
REQUIRED_FILES = ("genai_config.json", "tokenizer.json")
# transformers reads GGUF through `gguf`; the builder needs `onnx_ir`; both are optional extras.
_BUILD_PACKAGES = ("torch", "transformers", "gguf", "onnx_ir", "onnxruntime_genai")
_QUIET = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error"}


def build_smollm2_onnx(dest: Path) -> None:
    """The catalogue's builder: SmolLM2's embedded GGUF as an int4 ONNX model in `dest`."""
    gguf = catalogue.resolve(SOURCE_MODEL, default_cache_dir()).path
    build_from_gguf(gguf, dest, precision="int4")


def build_from_gguf(gguf: Path, dest: Path, *, precision: str = "int4") -> None:
    """Convert a GGUF model into an ONNX Runtime GenAI folder at `dest`.

    Everything is built in a temporary folder next to `dest` and renamed into place at the end,
    so an interrupted or failed build never leaves a half-built model where the service looks.
    """
    missing = [name for name in _BUILD_PACKAGES if importlib.util.find_spec(name) is None]
    if missing:
        raise ModelNotAvailable(f"Building ONNX models needs {', '.join(missing)}: pip install 'nexa-text[onnx]'")
    dest.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
    try:
        started = time.perf_counter()
        hf_dir, out_dir = work / "hf", work / "onnx"
        _export_float_model(gguf, hf_dir)
        _run_builder(hf_dir, out_dir, work / "builder-cache", precision)
        missing = [name for name in REQUIRED_FILES if not (out_dir / name).is_file()]
        if missing:
            raise ModelError(f"The ONNX model builder finished without writing {', '.join(missing)}.")
        out_dir.rename(dest)
        print(f"Built {dest.name} in {time.perf_counter() - started:.0f} s", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _export_float_model(gguf: Path, hf_dir: Path) -> None:
    """The GGUF as a float32 transformers folder (config, safetensors weights, tokenizer)."""
    os.environ.update(_QUIET)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = loaded.config
    # `save_pretrained` refuses a model still marked as GGUF-quantised, and the builder picks its
    # exporter by `architectures`, which a GGUF-derived config lacks: a fresh model from a clean
    # config, holding the dequantised weights, saves as an ordinary float checkpoint.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = [type(loaded).__name__]
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(loaded.state_dict())
    fresh.save_pretrained(hf_dir)
    tokenizer.save_pretrained(hf_dir)
    del loaded, fresh


def _run_builder(hf_dir: Path, out_dir: Path, cache_dir: Path, precision: str) -> None:
    # A separate process: the builder is a script (its own argument parsing and logging), and
    # the memory it takes is given back when it exits.
    command = [
        sys.executable,
        "-m",
        "onnxruntime_genai.models.builder",
        *("-m", str(hf_dir), "-i", str(hf_dir), "-o", str(out_dir)),
        *("-p", precision, "-e", "cpu", "-c", str(cache_dir)),
    ]
    result = subprocess.run(
        command, env={**os.environ, **_QUIET}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-15:])
        raise ModelError(f"The ONNX model builder failed (exit code {result.returncode}):\n{tail}")
