"""Does unloading a Piper voice give its memory back inside the process? (Why the audio service runs
voices in-process while Whisper runs in worker processes.)

Loads piper-joe, speaks one sentence and unloads it, `ROUNDS` times in this one process, printing its
resident memory after each step, with and without the heap trim that `PiperEngine.close` does.

    .venv/bin/python -m bench.voice_memory
"""

from __future__ import annotations

import gc
import threading
from unittest import mock

import psutil

from nexa_audio.settings import Settings
from nexa_audio.speech import engine as voice_engine
from nexa_common import catalogue

ROUNDS = 6
MIB = 1024 * 1024


def _rss_mib() -> float:
    return psutil.Process().memory_info().rss / MIB


def measure(trim: bool) -> list[tuple[float, float]]:
    """(loaded, after unload) MiB for each round."""
    settings = Settings(threads=1)
    path = catalogue.locate(catalogue.find(catalogue.DEFAULT_VOICE), settings.cache_dir).path
    rounds = []
    with mock.patch.object(
        voice_engine, "release_freed_memory", voice_engine.release_freed_memory if trim else gc.collect
    ):
        for _ in range(ROUNDS):
            voice = voice_engine.PiperEngine(path, settings)
            voice.synthesize("And so my fellow Americans, ask not what your country can do for you.", 0,
                             threading.Event())  # fmt: skip
            loaded = _rss_mib()
            voice.close()
            del voice
            gc.collect()
            rounds.append((loaded, _rss_mib()))
    return rounds


def main() -> None:
    import onnxruntime  # noqa: F401  (the libraries' own memory is not the voice's)
    import piper  # noqa: F401

    print(f"after imports: {_rss_mib():.0f} MiB")
    for trim in (False, True):
        for i, (loaded, after) in enumerate(measure(trim)):
            print(f"{'trimmed' if trim else 'untrimmed'} round {i}: loaded {loaded:.0f} MiB, unloaded {after:.0f} MiB")


if __name__ == "__main__":
    main()
