"""What a diffusers model's weight files hold, read from their safetensors headers without loading
them: for the pool's memory estimate before a load."""

from __future__ import annotations

import json
import struct
from pathlib import Path

_HALF = {"F16", "BF16"}
_MAX_HEADER = 100 * 1024 * 1024


def weight_files(path: Path) -> list[Path]:
    """The safetensors files of a pipeline folder, or the single checkpoint given."""
    if path.is_file():
        return [path]
    return sorted(path.rglob("*.safetensors")) or sorted(p for p in path.rglob("*") if p.is_file())


def stored_weights_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in weight_files(path))


def stored_in_half_precision(path: Path) -> bool:
    """Whether the weights are stored as float16/bfloat16 (the CPU runs them as float32: twice the size)."""
    for file in weight_files(path):
        if file.suffix != ".safetensors":
            continue
        try:
            with file.open("rb") as handle:
                (length,) = struct.unpack("<Q", handle.read(8))
                if length > _MAX_HEADER:
                    continue
                header = json.loads(handle.read(length))
        except (OSError, ValueError, struct.error):
            continue
        dtypes = {v.get("dtype") for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)}
        if dtypes & _HALF:
            return True
    return False
