"""The audio service's own metrics, registered on the app's registry (next to the HTTP ones and the
kit's queue gauges, `nexa_audio_queue_depth` and `nexa_audio_running`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

from .engine import Transcript

_RTF_BUCKETS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0)


class AudioMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "nexa_audio_requests",
            "Transcription and translation requests, by task and outcome",
            ["task", "outcome"],
            registry=registry,
        )
        self.audio_seconds = Counter(
            "nexa_audio_processed_seconds", "Seconds of audio transcribed or translated", registry=registry
        )
        self.real_time_factor = Histogram(
            "nexa_audio_real_time_factor",
            "Processing time (decode + model) divided by the audio's duration; below 1 is faster than real time",
            buckets=_RTF_BUCKETS,
            registry=registry,
        )

    def observe(self, transcript: Transcript) -> None:
        self.audio_seconds.inc(transcript.duration)
        if transcript.duration > 0:
            self.real_time_factor.observe(transcript.elapsed_s / transcript.duration)
