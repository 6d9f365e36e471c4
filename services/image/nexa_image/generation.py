"""One generation request end to end: the model's slot, the engine in a worker thread (stopped when
the client leaves), PNGs, saved files; and the image service's state."""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Protocol, cast

from fastapi import Depends, Request

from nexa_common.errors import APIError
from nexa_common.kit.cancellation import in_thread, while_connected
from nexa_common.kit.models import PooledModel
from nexa_common.kit.service import ServiceState, get_state
from nexa_common.modalities import Capability
from nexa_common.schemas.keep_alive import kept

from .engine import GenerationJob, ImageEngine
from .images import encode_png
from .metrics import ImageMetrics
from .outputs import OutOfSpace, OutputStore
from .settings import Settings

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


@dataclass
class ImageState(ServiceState):
    """What the image app keeps on `app.state.service`."""

    settings: Settings
    metrics: ImageMetrics
    store: OutputStore


StateDep = Annotated[ImageState, Depends(get_state)]


class ModelChoice(Protocol):
    model: str | None
    keep_alive: float | None


@dataclass(frozen=True)
class Wanted:
    """The model a request names, and what the route needs it to do."""

    body: ModelChoice
    capability: Capability


async def generate(
    request: Request,
    state: ImageState,
    wanted: Wanted,
    build: Callable[[ImageEngine], GenerationJob],
    *,
    task: str,
    save: bool,
) -> list[GeneratedImage]:
    """Hold the request's model (loading it if needed), build the job for it (sizes depend on the
    model), wait for one of its slots and generate. A client that leaves stops the wait, or the
    diffusion loop at the next step; the slot goes to the next request as soon as it has stopped."""
    pool = state.pool
    model = pool.get(wanted.body.model, wanted.capability)
    cancel = threading.Event()

    async def work() -> list[GeneratedImage]:
        async with pool.use(model, kept(wanted.body.keep_alive)) as loaded:
            job = build(cast(ImageEngine, loaded))
            return await _generate(state, model, job, cancel, task, save)

    return await while_connected(request, work(), cancel)


async def _generate(
    state: ImageState, model: PooledModel, job: GenerationJob, cancel: threading.Event, task: str, save: bool
) -> list[GeneratedImage]:
    """Generate in one of the model's slots; a full disk for the saved PNG is a 507."""
    async with state.pool.slot(model) as lease:
        engine = cast(ImageEngine, lease.engine)
        try:
            return await in_thread(lambda c: _run(state, engine, job, c, task, save), cancel)
        except OutOfSpace:
            state.metrics.failures.labels(task).inc()
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
            state.metrics.failures.labels(task).inc()
            raise


def _run(
    state: ImageState, engine: ImageEngine, job: GenerationJob, cancel: threading.Event, task: str, save: bool
) -> list[GeneratedImage]:
    result = engine.generate(job, cancel)
    state.metrics.observe(task, len(result.images), result.steps_run, result.seconds)
    out = []
    for image, seed in zip(result.images, job.seeds, strict=True):
        png = encode_png(image)
        out.append(GeneratedImage(png, seed, state.store.save(png) if save else None))
    return out
