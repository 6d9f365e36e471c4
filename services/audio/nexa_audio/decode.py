"""Audio files to 16 kHz mono samples, with PyAV (bundled FFmpeg): wav, flac, mp3, ogg, m4a, webm..."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

log = logging.getLogger("nexa.audio.decode")

SAMPLE_RATE = 16_000  # what Whisper expects
# Below this peak (about -74 dBFS, under 16-bit dither) a recording is treated as silence.
_SILENCE_PEAK = 2e-4


class UndecodableAudio(Exception):
    """The file is not audio that FFmpeg can decode."""


def decode(path: Path) -> np.ndarray:
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.float32)  # an empty upload is empty audio, not an error
    from faster_whisper.audio import decode_audio

    try:
        audio = decode_audio(str(path), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # FFmpeg raises many types (InvalidDataError, no audio stream, ...)
        log.info("undecodable upload: %s: %s", type(exc).__name__, exc)
        raise UndecodableAudio from exc
    return np.asarray(audio, dtype=np.float32)


def is_silent(audio: np.ndarray) -> bool:
    return audio.size == 0 or float(np.max(np.abs(audio))) < _SILENCE_PEAK
