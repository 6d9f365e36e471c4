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
            "Transcription, translation and speech requests, by task and outcome",
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
        self.speech_sentences = Counter(
            "nexa_audio_speech_sentences",
            "Sentences synthesised for /v1/audio/speech (a request that is cancelled stops adding to it)",
            registry=registry,
        )
        self.speech_seconds = Counter(
            "nexa_audio_speech_seconds", "Seconds of audio synthesised (before the speed change)", registry=registry
        )
        self.speech_real_time_factor = Histogram(
            "nexa_audio_speech_real_time_factor",
            "Synthesis and encoding time divided by the audio's duration, per request; below 1 is faster than real time",
            buckets=_RTF_BUCKETS,
            registry=registry,
        )

    def observe(self, transcript: Transcript) -> None:
        self.audio_seconds.inc(transcript.duration)
        if transcript.duration > 0:
            self.real_time_factor.observe(transcript.elapsed_s / transcript.duration)
