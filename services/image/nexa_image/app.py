"""The image service's FastAPI app: the kit's model service with the diffusers loader, and the
store of generated images (pruned at startup)."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from nexa_common.catalogue import Backend, ResolvedModel
from nexa_common.kit.models import ModelPool
from nexa_common.kit.service import service_app
from nexa_common.modalities import Modality, spec

from .diffusers_engine import DiffusersEngine
from .generation import ImageState
from .metrics import ImageMetrics
from .outputs import OutputStore
from .routes import router
from .settings import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    registry = CollectorRegistry()

    def load(model: ResolvedModel) -> DiffusersEngine:
        return DiffusersEngine.load(model, settings)

    store = OutputStore(
        settings.output_dir or settings.cache_dir / "image-outputs",
        settings.max_outputs_kept,
        settings.output_max_age_s,
    )
    image = spec(Modality.IMAGE)
    pool = ModelPool(image, settings, {Backend.DIFFUSERS: load})
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
