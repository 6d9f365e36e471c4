"""The text service's own metrics, on the app's registry (next to the HTTP ones)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from nexa_common.admission import AdmissionQueue

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 1000)


class TextMetrics:
    def __init__(self, registry: CollectorRegistry, admission: AdmissionQueue, engine: object) -> None:
        self.requests = Counter(
            "nexa_text_requests",
            "Generation requests by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=registry,
        )
        self.queue_depth = Gauge("nexa_text_queue_depth", "Requests waiting for the model", registry=registry)
        self.queue_depth.set_function(lambda: admission.waiting)
        self.running = Gauge("nexa_text_running_sequences", "Sequences being generated", registry=registry)
        self.running.set_function(lambda: admission.running)
        self.time_to_first_token = Histogram(
            "nexa_text_time_to_first_token_seconds",
            "From request arrival (queueing included) to the first token",
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self.tokens_per_second = Histogram(
            "nexa_text_tokens_per_second",
            "Decoding speed of a sequence, after its first token",
            buckets=_RATE_BUCKETS,
            registry=registry,
        )
        self.tokens_generated = Counter("nexa_text_tokens_generated", "Completion tokens generated", registry=registry)
        self.prompt_tokens = Counter("nexa_text_prompt_tokens", "Prompt tokens processed", registry=registry)
        self.cached_prompt_tokens = Counter(
            "nexa_text_cached_prompt_tokens", "Prompt tokens reused from the KV cache, not evaluated", registry=registry
        )
        slots = Gauge("nexa_text_slots", "Sequences the engine decodes at once", registry=registry)
        slots.set_function(lambda: admission.concurrency)
        governor = getattr(engine, "governor", None)
        if governor is not None:  # the batched engine adapts its threads to the machine's load
            threads = Gauge("nexa_text_decode_threads", "Threads the engine decodes with now", registry=registry)
            threads.set_function(lambda: governor.threads)
            changes = Gauge(
                "nexa_text_decode_thread_changes", "Times the engine changed its thread count", registry=registry
            )
            changes.set_function(lambda: governor.changes)
