"""The text service's own metrics, on the app's registry (next to the HTTP ones and the kit's queue
gauges, `nexa_text_queue_depth` and `nexa_text_running`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from nexa_common.kit.models import ModelPool

_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_RATE_BUCKETS = (1, 2, 5, 10, 20, 35, 50, 75, 100, 150, 200, 300, 500, 1000)


class TextMetrics:
    def __init__(self, registry: CollectorRegistry, pool: ModelPool, arriving: Callable[[], int]) -> None:
        self.requests = Counter(
            "nexa_text_requests",
            "Generation requests by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=registry,
        )
        # The name before the kit's shared `nexa_text_running`; kept for one release.
        Gauge(
            "nexa_text_running_sequences",
            "Sequences being generated (deprecated: nexa_text_running)",
            registry=registry,
        ).set_function(lambda: pool.running)
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
        Gauge(
            "nexa_text_arriving_requests",
            "Generation requests inside the service and not submitted to an engine yet (an idle engine waits for them)",
            registry=registry,
        ).set_function(arriving)
        registry.register(_EngineGauges(pool))


class _EngineGauges(Collector):
    """Per loaded model: the sequences its engine decodes at once, and (batched engine) the threads
    it decodes with now, how often that changed (see threads.py), the slots holding tokens, and
    the decode steps run."""

    def __init__(self, pool: ModelPool) -> None:
        self._pool = pool

    def collect(self) -> Iterable[Metric]:
        slots = GaugeMetricFamily("nexa_text_slots", "Sequences the engine decodes at once", labels=["model"])
        threads = GaugeMetricFamily("nexa_text_decode_threads", "Threads the engine decodes with now", labels=["model"])
        changes = GaugeMetricFamily(
            "nexa_text_decode_thread_changes", "Times the engine changed its thread count", labels=["model"]
        )
        held = GaugeMetricFamily(
            "nexa_text_kv_held_sequences",
            "Slots whose tokens are in the KV cache: running, or kept for prefix reuse",
            labels=["model"],
        )
        steps = CounterMetricFamily(
            "nexa_text_decode_steps",
            "llama_decode calls (tokens generated per step: how many sequences share a step)",
            labels=["model"],
        )
        for name, model in self._pool.models.items():
            runtime = model.engine
            engine = getattr(runtime, "engine", runtime)
            if engine is None:
                continue
            slots.add_metric([name], getattr(engine, "slots", 1))
            governor = getattr(engine, "governor", None)
            if governor is not None:
                threads.add_metric([name], governor.threads)
                changes.add_metric([name], governor.changes)
            if hasattr(engine, "held_sequences"):
                held.add_metric([name], engine.held_sequences)
            if hasattr(engine, "steps"):
                steps.add_metric([name], engine.steps)
        return [slots, threads, changes, held, steps]
