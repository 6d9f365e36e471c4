"""What a GGUF file says about its model's shape, read from its header without loading it, and the
memory a model of that shape takes to serve: its weights (the file, memory-mapped) plus the KV
cache of the context it is given. The pool checks this estimate before loading (a model that can
never fit is refused at once) and against the measured RSS after."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

MAGIC = b"GGUF"
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q", 12: "d"}
_STRING, _ARRAY = 8, 9
_WANTED = ("block_count", "embedding_length", "context_length", "attention.head_count",
           "attention.head_count_kv", "attention.key_length", "attention.value_length")  # fmt: skip
MAX_KEYS = 100_000
"""More metadata keys than any real file has: a header claiming more is not read."""
OVERHEAD_BYTES = 32 * 1024 * 1024
"""llama.cpp's compute buffers and the runtime's own allocations, beside weights and cache."""


class NotGGUF(ValueError):
    """The file is not a GGUF file this reader understands."""


@dataclass(frozen=True)
class GGUFShape:
    architecture: str
    layers: int
    embedding: int
    heads: int
    kv_heads: int
    key_length: int
    value_length: int
    trained_context: int

    def kv_bytes(self, n_ctx: int, sequences: int = 1) -> int:
        """The f16 KV cache of `sequences` contexts of `n_ctx` tokens (llama.cpp's default cache type)."""
        per_token = self.layers * self.kv_heads * (self.key_length + self.value_length) * 2
        return per_token * min(n_ctx, self.trained_context or n_ctx) * sequences


def _read(handle: BinaryIO, fmt: str) -> Any:
    size = struct.calcsize("<" + fmt)
    data = handle.read(size)
    if len(data) != size:
        raise NotGGUF("the header ends early")
    return struct.unpack("<" + fmt, data)[0]


def _string(handle: BinaryIO) -> str:
    length = _read(handle, "Q")
    if length > 1 << 24:
        raise NotGGUF("a metadata string is implausibly long")
    data = handle.read(length)
    if len(data) != length:
        raise NotGGUF("the header ends early")
    return data.decode("utf-8", errors="replace")


def _value(handle: BinaryIO, kind: int, keep: bool) -> Any:
    """A metadata value; one not kept is skipped (seeked over) rather than decoded."""
    if kind in _SCALARS:
        if keep:
            return _read(handle, _SCALARS[kind])
        handle.seek(struct.calcsize("<" + _SCALARS[kind]), 1)
        return None
    if kind == _STRING:
        if keep:
            return _string(handle)
        handle.seek(_read(handle, "Q"), 1)
        return None
    if kind == _ARRAY:
        item_kind, count = _read(handle, "I"), _read(handle, "Q")
        if count > 1 << 26:
            raise NotGGUF("a metadata array is implausibly long")
        if item_kind in _SCALARS and not keep:
            handle.seek(struct.calcsize("<" + _SCALARS[item_kind]) * count, 1)
            return None
        items = [_value(handle, item_kind, keep) for _ in range(count)]
        return items if keep else None
    raise NotGGUF(f"unknown metadata type {kind}")


def _shape_key(key: str) -> bool:
    return key == "general.architecture" or key.partition(".")[2] in _WANTED


def read_metadata(
    path: Path, wanted: Callable[[str], bool] | None = None, enough: Callable[[dict[str, Any]], bool] | None = None
) -> dict[str, Any]:
    """The header's key/value metadata (only the keys `wanted` accepts, when given; the rest, such
    as the vocabulary's arrays, are skipped without being decoded). Reading stops as soon as what
    was read is `enough` (the model's shape comes before its vocabulary)."""
    with path.open("rb") as handle:
        if handle.read(4) != MAGIC:
            raise NotGGUF(f"'{path.name}' is not a GGUF file")
        version = _read(handle, "I")
        if version < 2:
            raise NotGGUF(f"GGUF version {version} is too old")
        _read(handle, "Q")  # tensors
        keys = _read(handle, "Q")
        if keys > MAX_KEYS:
            raise NotGGUF("the header claims too many metadata keys")
        metadata: dict[str, Any] = {}
        for _ in range(keys):
            key = _string(handle)
            keep = wanted is None or wanted(key)
            value = _value(handle, _read(handle, "I"), keep)
            if keep:
                metadata[key] = value
                if enough is not None and enough(metadata):
                    break
        return metadata


def _has_shape(metadata: dict[str, Any]) -> bool:
    arch = metadata.get("general.architecture")
    return bool(arch) and all(f"{arch}.{name}" in metadata for name in _WANTED)


def shape(path: Path) -> GGUFShape:
    """The model's shape from its GGUF header."""
    metadata = read_metadata(path, _shape_key, _has_shape)
    arch = str(metadata.get("general.architecture", ""))
    if not arch:
        raise NotGGUF(f"'{path.name}' names no architecture")
    get = {name: metadata.get(f"{arch}.{name}") for name in _WANTED}
    embedding = int(get["embedding_length"] or 0)
    heads = int(get["attention.head_count"] or 1) or 1
    head_length = embedding // heads
    kv_heads = get["attention.head_count_kv"]
    return GGUFShape(
        architecture=arch,
        layers=int(get["block_count"] or 0),
        embedding=embedding,
        heads=heads,
        kv_heads=int(kv_heads if isinstance(kv_heads, int) else heads),
        key_length=int(get["attention.key_length"] or head_length),
        value_length=int(get["attention.value_length"] or head_length),
        trained_context=int(get["context_length"] or 0),
    )


def trained_context(path: Path) -> int | None:
    """The context length the model was trained on, or None when the header does not say (or the
    file is not GGUF): read before llama.cpp allocates a context, whose KV cache it sizes."""
    try:
        metadata = read_metadata(
            path,
            lambda key: key.endswith(".context_length"),
            lambda found: any(isinstance(v, int) and v > 0 for v in found.values()),
        )
    except (OSError, NotGGUF):
        return None
    return next((v for v in metadata.values() if isinstance(v, int) and v > 0), None)


def serving_bytes(path: Path, n_ctx: int, sequences: int = 1) -> int:
    """What serving the model takes: the file (weights), its KV cache, and llama.cpp's buffers."""
    return path.stat().st_size + shape(path).kv_bytes(n_ctx, sequences) + OVERHEAD_BYTES
