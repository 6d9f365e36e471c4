"""The PyAV encoders on their own: every format decodes at its rate, bytes leave as samples come in,
speed is exact, and a request with nothing spoken still gets a valid file."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from speech_helpers import RATES, VOICE_RATE, decoded

from nexa_audio.speech.encoders import ENCODINGS, StreamEncoder

SECOND = VOICE_RATE


def tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * VOICE_RATE)) / VOICE_RATE
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("response_format", sorted(ENCODINGS))
def test_bytes_leave_with_each_piece_and_the_whole_decodes(response_format: str) -> None:
    encoder = StreamEncoder(response_format, VOICE_RATE)  # type: ignore[arg-type]
    pieces = [encoder.encode(tone(1.5, hz)) for hz in (220, 330, 440)]
    tail = encoder.finish()
    assert all(pieces), [len(p) for p in pieces]  # every second and a half of audio sends something at once
    rate, seconds = decoded(b"".join([*pieces, tail]), response_format, pcm_rate=encoder.rate)
    assert rate == encoder.rate == RATES[response_format]
    assert seconds == pytest.approx(4.5, abs=0.1)


@pytest.mark.parametrize("speed", [0.25, 0.5, 2.0, 4.0])
def test_speed_divides_the_duration(speed: float) -> None:
    encoder = StreamEncoder("flac", VOICE_RATE, speed)
    data = b"".join([encoder.encode(tone(2.0)), encoder.encode(tone(2.0)), encoder.finish()])
    _, seconds = decoded(data, "flac")
    assert seconds == pytest.approx(4.0 / speed, rel=0.02)


@pytest.mark.parametrize("response_format", ["wav", "flac"])
def test_nothing_encoded_is_still_a_file_with_its_header(response_format: str) -> None:
    # Only reachable when every sentence came out silent; the container formats then still say what they hold.
    data = StreamEncoder(response_format, VOICE_RATE).finish()  # type: ignore[arg-type]
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.audio[0].codec_context.sample_rate == VOICE_RATE
        assert sum(frame.samples for frame in container.decode(audio=0)) == 0
