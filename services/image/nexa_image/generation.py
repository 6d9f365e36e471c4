"""One generation request end to end: admission, the engine in a worker thread, PNGs, saved files."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass

from nexa_common.admission import AdmissionQueue
from nexa_common.errors import APIError
from nexa_common.service import ModelStatus

from .engine import GenerationJob, ImageEngine
from .images import encode_png
from .metrics import ImageMetrics
from .outputs import OutOfSpace, OutputStore

log = logging.getLogger("nexa.image.generation")

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class GeneratedImage:
    png: bytes
    seed: int
    name: str | None
    """The saved file's name, when the caller asked for one."""


def seeds_for(seed: int | None, count: int) -> list[int]:
    """Image i gets seed + i; with no seed one is drawn, and returned, so the image can be made again."""
    first = secrets.randbelow(MAX_SEED + 1) if seed is None else seed
    return [(first + i) % (MAX_SEED + 1) for i in range(count)]


class ImageService:
    def __init__(
        self,
        status: ModelStatus,
        admission: AdmissionQueue,
        store: OutputStore,
        metrics: ImageMetrics,
    ) -> None:
        self.status = status
        self.admission = admission
        self.store = store
        self.metrics = metrics
        self.engine: ImageEngine | None = None

    def ready_engine(self) -> ImageEngine:
        self.status.require_ready()
        if self.engine is None:  # ready without an engine cannot happen; keep the 503 just in case
            raise APIError(503, "The image model is not loaded.", code="model_loading")
        return self.engine

    async def generate(self, job: GenerationJob, *, task: str, save: bool) -> list[GeneratedImage]:
        engine = self.ready_engine()
        async with self.admission.slot():
            try:
                return await asyncio.to_thread(self._run, engine, job, task, save)
            except OutOfSpace:
                self.metrics.failures.labels(task).inc()
                log.error("no space left to save a generated image in the output folder")
                raise APIError(
                    507,
                    "The server has no disk space left to save the image; free space in its output folder or "
                    "ask for b64_json output.",
                    code="insufficient_storage",
                ) from None
            except APIError:
                raise
            except Exception:
                self.metrics.failures.labels(task).inc()
                raise

    def _run(self, engine: ImageEngine, job: GenerationJob, task: str, save: bool) -> list[GeneratedImage]:
        result = engine.generate(job)
        self.metrics.observe(task, len(result.images), result.steps_run, result.seconds)
        out = []
        for image, seed in zip(result.images, job.seeds, strict=True):
            png = encode_png(image)
            out.append(GeneratedImage(png, seed, self.store.save(png) if save else None))
        return out
