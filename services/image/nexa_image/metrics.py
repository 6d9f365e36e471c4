"""The image service's own Prometheus metrics, on the app's registry (HTTP counts and the queue gauges
`nexa_image_queue_depth` and `nexa_image_running` come from nexa_common)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_GENERATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class ImageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.images = Counter("nexa_image_images", "Images generated", ["task"], registry=registry)
        self.failures = Counter(
            "nexa_image_generation_failures", "Generations that failed", ["task"], registry=registry
        )
        self.steps = Counter("nexa_image_steps", "Denoising steps run (per image)", ["task"], registry=registry)
        self.generation_seconds = Histogram(
            "nexa_image_generation_seconds",
            "Time a generation spent in the pipeline (not queued)",
            ["task"],
            buckets=_GENERATION_BUCKETS,
            registry=registry,
        )
        self.steps_per_second = Gauge(
            "nexa_image_steps_per_second", "Denoising steps per second of the last generation", registry=registry
        )

    def observe(self, task: str, images: int, steps: int, seconds: float) -> None:
        self.images.labels(task).inc(images)
        self.steps.labels(task).inc(steps * images)
        self.generation_seconds.labels(task).observe(seconds)
        if seconds > 0:
            self.steps_per_second.set(steps * images / seconds)
