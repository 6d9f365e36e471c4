"""The context length a GGUF model was trained on, read from the file's header before llama.cpp
allocates a context (whose KV cache is sized by it).

gguf's GGUFReader parses every tensor and vocabulary array first (seconds for a small model);
the key needed here comes early in the header, so this reads only up to it.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import BinaryIO

_MAGIC = b"GGUF"
# GGUF value types: sizes of the fixed-size ones; 8 is a string, 9 an array.
_FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
_INTEGER = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 10: "<Q", 11: "<q"}
_STRING, _ARRAY = 8, 9
_MAX_KEYS = 100_000


def _u64(handle: BinaryIO) -> int:
    value: int = struct.unpack("<Q", handle.read(8))[0]
    return value


def _string(handle: BinaryIO) -> bytes:
    return handle.read(_u64(handle))


def _skip(handle: BinaryIO, kind: int) -> None:
    if kind in _FIXED:
        handle.seek(_FIXED[kind], 1)
    elif kind == _STRING:
        handle.seek(_u64(handle), 1)
    elif kind == _ARRAY:
        inner, count = struct.unpack("<I", handle.read(4))[0], _u64(handle)
        if inner in _FIXED:
            handle.seek(_FIXED[inner] * count, 1)
        else:
            for _ in range(count):
                _skip(handle, inner)
    else:
        raise ValueError(f"unknown GGUF value type {kind}")


def trained_context(path: Path) -> int | None:
    """`<architecture>.context_length`, or None when the file does not say (or is not GGUF v2+)."""
    try:
        with path.open("rb") as handle:
            if handle.read(4) != _MAGIC or struct.unpack("<I", handle.read(4))[0] < 2:
                return None
            _u64(handle)  # tensor count
            keys = min(_u64(handle), _MAX_KEYS)
            for _ in range(keys):
                key = _string(handle)
                kind = struct.unpack("<I", handle.read(4))[0]
                if key.endswith(b".context_length") and kind in _INTEGER:
                    fmt = _INTEGER[kind]
                    value: int = struct.unpack(fmt, handle.read(struct.calcsize(fmt)))[0]
                    return value if value > 0 else None
                _skip(handle, kind)
    except (OSError, struct.error, ValueError):
        return None
    return None
