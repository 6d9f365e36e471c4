"""Giving freed memory back to the system after a model is unloaded.

glibc's malloc keeps the pages of freed buffers in its heap for reuse, so a process that dropped an
ONNX Runtime session keeps most of its resident memory (piper-joe: 81 MiB before the first load,
252 loaded, ~200 after unloading) until the heap is trimmed (99 MiB after each of 6 rounds;
`python -m bench.voice_memory`).
"""

from __future__ import annotations

import ctypes
import gc


def release_freed_memory() -> None:
    """Collect garbage (a closed engine's buffers may sit in a reference cycle), then glibc's
    malloc_trim(0): return the heap's free pages to the system (the trim is a no-op elsewhere)."""
    gc.collect()
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own symbols: libc's, where it is glibc
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim with
        return
    trim(0)
