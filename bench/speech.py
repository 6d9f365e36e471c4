"""Speech: Piper called directly vs the audio service vs through the router (real-time factor), and
the time to the first audio byte of a streamed answer vs the time to the whole answer.

`python -m bench` runs it as its `speech` section; each figure's paths are interleaved in one run.
"""

from __future__ import annotations

import io
import time
import wave
from pathlib import Path
from typing import Any

import httpx

from .harness import summary

# Five sentences (about 20 s of speech): long enough for streaming to matter, short enough to repeat.
TEXT = (
    "The first sentence is about the weather, which was fine all day. "
    "The second sentence talks about a walk along the river in the morning. "
    "The third sentence describes the old bridge and the boats below it. "
    "The fourth sentence is about lunch in a small cafe near the market. "
    "The fifth sentence ends the story with a quiet evening at home."
)


def _decoded_seconds(data: bytes) -> float:
    """Counted from the decoded samples, not the header: a streamed WAV's header has no length."""
    import av

    samples, rate = 0, 1
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(audio=0):
            samples, rate = samples + frame.samples, frame.sample_rate
    return samples / rate


def measure(voice_path: Path, service_url: str, router_url: str, repetitions: int) -> dict[str, Any]:
    from piper import PiperVoice

    # The library as its users call it: its own loader and defaults, its own WAV writer.
    voice = PiperVoice.load(voice_path, config_path=f"{voice_path}.json")

    def direct() -> float:
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as wav:
            voice.synthesize_wav(TEXT, wav)
        return _decoded_seconds(buffer.getvalue())

    clients = {
        name: httpx.Client(base_url=url, timeout=300)
        for name, url in (("service", service_url), ("router", router_url))
    }
    body = {"model": "piper-joe", "input": TEXT, "voice": "alloy", "response_format": "wav"}

    def over_http(name: str) -> Any:
        def call() -> dict[str, float]:
            start = time.perf_counter()
            first = None
            chunks = []
            with clients[name].stream("POST", "/v1/audio/speech", json=body) as response:
                response.raise_for_status()
                for chunk in response.iter_raw():
                    first = first or time.perf_counter()
                    chunks.append(chunk)
            end = time.perf_counter()
            assert first is not None
            return {
                "seconds": end - start,
                "first_byte_s": first - start,
                "audio_s": _decoded_seconds(b"".join(chunks)),
            }

        return call

    def timed_direct() -> dict[str, float]:
        start = time.perf_counter()
        audio_s = direct()
        # The library returns nothing before the whole text is synthesised: its first byte is its last.
        elapsed = time.perf_counter() - start
        return {"seconds": elapsed, "first_byte_s": elapsed, "audio_s": audio_s}

    paths = {"direct": timed_direct, "service": over_http("service"), "router": over_http("router")}
    for fn in paths.values():  # warm-up, excluded
        fn()
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    for _ in range(repetitions):
        for name, fn in paths.items():
            runs[name].append(fn())
    for client in clients.values():
        client.close()
    out: dict[str, Any] = {"text_chars": len(TEXT), "sentences": 5}
    for name, rows in runs.items():
        # Piper's durations vary a little from one synthesis to the next: each run's own audio length.
        rtf = [r["seconds"] / r["audio_s"] for r in rows]
        out[name] = {
            "seconds": summary([r["seconds"] for r in rows]),
            "audio_seconds": summary([r["audio_s"] for r in rows]),
            "real_time_factor": summary(rtf),
            "first_byte_ms": summary([r["first_byte_s"] * 1000 for r in rows]),
        }
    for name in paths:
        row = out[name]
        # 1.0: as fast as the library itself. Paired by round (the paths of one round run back to back), so
        # a load that comes and goes on a shared machine moves both sides of each ratio alike.
        row["ratio"] = summary(
            [
                (d["seconds"] / d["audio_s"]) / (p["seconds"] / p["audio_s"])
                for d, p in zip(runs["direct"], runs[name], strict=True)
            ]
        )["median"]
        # Streamed: the first byte; not streamed (the library, or any server that sends the file whole): the end.
        row["first_byte_vs_whole"] = row["first_byte_ms"]["median"] / (row["seconds"]["median"] * 1000)
    return out
