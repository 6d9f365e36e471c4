"""Samples to the bytes of each `response_format`, with PyAV (FFmpeg's codecs, no ffmpeg binary),
incrementally: each sentence's samples give the bytes that can be sent now.

The container writes into an in-memory sink with `flush_packets`, so every muxed packet reaches the
sink at once; whatever the codec or muxer still holds (an MP3 frame's lookahead, the rest of an Ogg
page) comes with the next sentence or at `finish`. The output is not seekable, so muxers that would
patch their header at the end leave it open-ended: WAV sizes read 0xFFFFFFFF (as OpenAI's streamed
WAV does; decoders read to the end) and FLAC's STREAMINFO has no total sample count.

`speed` is FFmpeg's `atempo` filter: the voice speaks at its own pace and the audio is then
time-scaled without changing pitch, so the duration is exactly 1/speed of the normal one (Piper's
length_scale alone cannot go below a frame per phoneme and gave 0.63 x, not 0.5 x, at speed 2).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nexa_common.schemas.audio import SpeechFormat


@dataclass(frozen=True)
class Encoding:
    container: str  # FFmpeg muxer
    codec: str
    rate: int | None = None  # None: the voice's own rate
    bit_rate: int | None = None
    muxer_options: tuple[tuple[str, str], ...] = ()


ENCODINGS: dict[SpeechFormat, Encoding] = {
    "mp3": Encoding("mp3", "libmp3lame", bit_rate=64_000),
    # Opus runs at 48 kHz (or 8/12/16/24); 48 kHz is what every Opus decoder outputs anyway.
    # Ogg pages of 250 ms instead of 1 s: a short sentence's audio leaves with it, not with the next one.
    "opus": Encoding("ogg", "libopus", rate=48_000, bit_rate=32_000, muxer_options=(("page_duration", "250000"),)),
    "aac": Encoding("adts", "aac", bit_rate=64_000),
    "flac": Encoding("flac", "flac"),
    "wav": Encoding("wav", "pcm_s16le"),
    "pcm": Encoding("s16le", "pcm_s16le"),
}


_TEMPO_FRAME = 1024  # samples per frame pushed through the atempo graph


def output_rate(response_format: SpeechFormat, voice_rate: int) -> int:
    return ENCODINGS[response_format].rate or voice_rate


class _Sink:
    """A write-only file for PyAV: no `seek`, so FFmpeg treats the output as a stream."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        return len(data)

    def take(self) -> bytes:
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class StreamEncoder:
    """Float32 mono samples at `input_rate` in, the encoded file out, piece by piece. Not thread-safe:
    one request's worker thread calls it, one call at a time."""

    def __init__(self, response_format: SpeechFormat, input_rate: int, speed: float = 1.0) -> None:
        import av

        encoding = ENCODINGS[response_format]
        self._av = av
        self._input_rate = input_rate
        self.rate = encoding.rate or input_rate
        self._sink = _Sink()
        self._container = av.open(
            self._sink, "w", format=encoding.container, options={"flush_packets": "1", **dict(encoding.muxer_options)}
        )
        stream = self._container.add_stream(encoding.codec, rate=self.rate, layout="mono")  # type: ignore[call-overload]
        assert isinstance(stream, av.AudioStream)
        self._stream = stream
        if encoding.bit_rate:
            self._stream.bit_rate = encoding.bit_rate
        context = stream.codec_context
        self._resampler = av.AudioResampler(
            format=context.format.name if context.format else None,
            layout="mono",
            rate=self.rate,
            frame_size=context.frame_size or None,
        )
        self._tempo = _tempo_graph(av, input_rate, speed) if speed != 1.0 else None
        self._started = False
        self._pts = 0

    def encode(self, samples: np.ndarray) -> bytes:
        """The bytes these samples complete (possibly none yet)."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        # The filter graph hands a frame on only once the next one arrives: small frames keep what it
        # holds back to a few milliseconds, not a whole sentence.
        step = len(samples) if self._tempo is None else _TEMPO_FRAME
        for start in range(0, len(samples), step):
            piece = samples[start : start + step]
            frame = self._av.AudioFrame.from_ndarray(piece.reshape(1, -1), format="flt", layout="mono")
            frame.sample_rate = self._input_rate
            frame.pts = self._pts
            self._pts += piece.size
            for timed in self._tempo_frames(frame):
                self._write(self._resampler.resample(timed))
        return self._sink.take()

    def finish(self) -> bytes:
        """Everything still held, and the container's trailer; a valid (silent) file when nothing was encoded."""
        for timed in self._tempo_frames(None):
            self._write(self._resampler.resample(timed))
        self._write(self._resampler.resample(None))
        self._mux(self._stream.encode(None))
        if not self._started:
            self._container.start_encoding()
        self._container.close()
        return self._sink.take()

    def close(self) -> None:
        """Drop the encoder without finishing the file (the client left)."""
        self._container.close()

    def _tempo_frames(self, frame):  # type: ignore[no-untyped-def]
        if self._tempo is None:
            return [frame] if frame is not None else []
        self._tempo.push(frame)
        out = []
        while True:
            try:
                out.append(self._tempo.pull())
            except (self._av.error.BlockingIOError, self._av.error.EOFError):
                return out

    def _write(self, frames) -> None:  # type: ignore[no-untyped-def]
        for frame in frames:
            self._mux(self._stream.encode(frame))

    def _mux(self, packets) -> None:  # type: ignore[no-untyped-def]
        if packets:
            self._started = True
            self._container.mux(packets)


def _tempo_graph(av, rate: int, speed: float):  # type: ignore[no-untyped-def]
    """abuffer -> atempo (one, or two for speeds under 0.5, atempo's own lower limit) -> abuffersink."""
    graph = av.filter.Graph()
    node = graph.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=f"1/{rate}")
    steps = [speed] if speed >= 0.5 else [speed**0.5, speed**0.5]
    for step in steps:
        tempo = graph.add("atempo", f"{step:.6f}")
        node.link_to(tempo)
        node = tempo
    sink = graph.add("abuffersink")
    node.link_to(sink)
    graph.configure()
    return graph
