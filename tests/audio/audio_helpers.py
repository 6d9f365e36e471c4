"""Test audio made on the fly with PyAV: jfk.flac in other containers, silence, longer speech."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
from support import JFK_SENTENCE as JFK_SENTENCE  # re-exported: the audio tests import both from here
from support import normalise as normalise

RATE = 16_000


def load(source: Path | bytes) -> np.ndarray:
    """16 kHz mono int16 samples of an audio file."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    chunks = []
    with av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source)) as container:
        for frame in container.decode(audio=0):
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(chunks)


def encode(samples: np.ndarray, container: str, codec: str, bit_rate: int | None = None) -> bytes:
    """Encode int16 mono samples into a container (wav, mp3, ogg, ...) in memory."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = out.add_stream(codec, rate=RATE, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        context = stream.codec_context
        resampler = av.AudioResampler(
            format=context.format.name, layout="mono", rate=RATE, frame_size=context.frame_size or None
        )
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for converted in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


FORMATS = {"mp3": ("mp3", "libmp3lame"), "wav": ("wav", "pcm_s16le"), "ogg": ("ogg", "libopus")}


def silence_wav(seconds: float) -> bytes:
    return encode(np.zeros(int(seconds * RATE), dtype=np.int16), "wav", "pcm_s16le")
