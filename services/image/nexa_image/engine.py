"""What the HTTP layer needs from an image generator, whatever runs it."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Protocol

from PIL import Image

from nexa_common.kit.worker import WorkerEngine


@dataclass(frozen=True)
class GenerationJob:
    """One request's images: one per seed, all from the same prompt and settings."""

    prompt: str
    negative_prompt: str
    width: int
    height: int
    steps: int
    cfg_scale: float
    seeds: list[int]
    init_image: Image.Image | None = None
    """Set for img2img: the input, already resized to width x height."""
    strength: float = 0.75
    """img2img only: how far the result may move away from the input (1.0 ignores it)."""


@dataclass
class GenerationResult:
    images: list[Image.Image]
    steps_run: int
    """Denoising steps actually run per image (img2img runs only `steps * strength` of them)."""
    seconds: float = field(default=0.0)


class GenerationCancelled(Exception):
    """The request's client left: the denoising loop stopped at a step boundary."""


class ImageEngine(Protocol):
    name: str
    vae_scale_factor: int
    """Pixels per latent pixel: sizes must be multiples of it (8 for real SD, 2 for tiny-sd)."""
    slots: int
    """Generations run at once."""
    native_size: int
    """The width and height the model was trained at (what OpenAI's `size: "auto"` gets)."""

    def generate(self, job: GenerationJob, cancel: threading.Event | None = None) -> GenerationResult:
        """Blocking; called in a worker thread, at most `slots` at a time. Raises GenerationCancelled
        within one denoising step of `cancel` being set."""
        ...

    def close(self) -> None: ...


class DiffusersWorker(WorkerEngine):
    """A diffusers model in a worker process: torch keeps freed memory in the process, so unloading
    a model ends its worker instead (the service itself never imports torch then)."""

    name: str
    vae_scale_factor: int
    native_size: int
    slots: int

    def __init__(self, factory_args: tuple[object, ...], name: str) -> None:
        super().__init__(
            "nexa_image.diffusers_engine:load_engine",
            factory_args,
            attributes=("name", "vae_scale_factor", "native_size", "slots"),
            calls={"generate": True},
            name=name,
        )

    def generate(self, job: GenerationJob, cancel: threading.Event | None = None) -> GenerationResult:
        result: GenerationResult = self.call("generate", job, cancel or threading.Event())
        return result
