"""The image service's FastAPI app: the kit's model service with the diffusers loader, and the
store of generated images (pruned at startup)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, ResolvedModel
from nexa_common.kit.models import MIB, BackendLoader, Engine, ModelPool
from nexa_common.kit.service import service_app
from nexa_common.modalities import Modality, spec

from .engine import DiffusersWorker
from .generation import ImageState
from .metrics import ImageMetrics
from .outputs import OutputStore
from .routes import router
from .settings import Settings
from .weights import stored_in_half_precision, stored_weights_bytes

WORKER_BASE_BYTES = 320 * MIB
"""An image worker's own memory beside the model: Python, torch, diffusers (measured ~300 MiB)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()

    def load(model: ResolvedModel) -> Engine:
        if settings.worker_processes:
            return DiffusersWorker((model, settings), model.name)
        from .diffusers_engine import DiffusersEngine  # torch, imported only where models run

        return DiffusersEngine.load(model, settings)

    def estimate(model: ResolvedModel) -> int:
        # The weights as loaded (float32 on the CPU, so half-precision files double), one image's
        # activations at the largest size allowed, and in a worker the libraries (torch) it imports.
        weights = stored_weights_bytes(model.path) * (2 if stored_in_half_precision(model.path) else 1)
        activations = settings.max_width * settings.max_height * 4 * 64
        return weights + activations + (WORKER_BASE_BYTES if settings.worker_processes else 0)

    store = OutputStore(
        settings.output_dir or settings.cache_dir / "image-outputs",
        settings.max_outputs_kept,
        settings.output_max_age_s,
    )
    image = spec(Modality.IMAGE)
    diffusers = BackendLoader(load, estimate, isolated=settings.worker_processes)
    pool = ModelPool(image, settings, {Backend.DIFFUSERS: diffusers}, registry)
    state = ImageState(image, settings, pool, registry, ImageMetrics(registry), store)

    async def startup() -> None:
        store.prune()

    return service_app(
        state,
        title="nexa image service",
        description="Text-to-image and image-to-image with diffusers: Nexa's /v1/txt2img and /v1/img2img, "
        "and OpenAI's /v1/images/generations.",
        routers=[router],
        startup=startup,
    )
