"""The diffusers engine: loads a Stable-Diffusion-style pipeline once and runs txt2img and img2img on it.

The img2img pipeline is built from the txt2img pipeline's components, so both share one copy of
the weights. Schedulers keep per-call state (the timesteps of the running call), so each
concurrency slot gets its own pipeline pair with its own scheduler, again over the same weights.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from nexa_common.catalogue import ResolvedModel

from .engine import GenerationCancelled, GenerationJob, GenerationResult
from .settings import Settings

log = logging.getLogger("nexa.image.engine")

SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


def pick_device(setting: str) -> str:
    if setting == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if setting == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device 'cuda' was asked for, but torch sees no CUDA GPU")
    return setting


def pick_dtype(setting: str, device: str) -> torch.dtype:
    if setting == "auto":
        # float16 halves GPU memory at no visible cost; CPUs run float16 slowly or not at all.
        return torch.float16 if device == "cuda" else torch.float32
    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[setting]


def diffusers_folder(path: Path) -> Path:
    """The folder holding model_index.json: `path` itself, or the newest snapshot of a hub cache folder."""
    if (path / "model_index.json").is_file():
        return path
    snapshots = sorted(path.glob("snapshots/*/model_index.json"), key=lambda p: p.stat().st_mtime)
    if snapshots:
        return snapshots[-1].parent
    raise FileNotFoundError(
        f"'{path.name}' is not a diffusers pipeline folder (no model_index.json, nor a hub cache snapshot with one)"
    )


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    # diffusers renamed `torch_dtype` to `dtype` (and warns on the old name); older releases know only the old one.
    from diffusers.utils import deprecation_utils

    new_api = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
    return {"dtype" if new_api else "torch_dtype": dtype}


def _is_sdxl_checkpoint(path: Path) -> bool:
    # SDXL checkpoints have a second text encoder; safetensors headers tell without loading weights.
    if path.suffix.lower() != ".safetensors":
        return False
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return any(key.startswith("conditioner.embedders.1.") for key in handle.keys())  # noqa: SIM118


def _load_text2image(path: Path, settings: Settings, dtype: torch.dtype) -> Any:
    from diffusers import AutoPipelineForText2Image, StableDiffusionPipeline, StableDiffusionXLPipeline

    if path.is_file():
        if path.suffix.lower() not in SINGLE_FILE_SUFFIXES:
            raise ValueError(f"'{path.name}' is not a single-file checkpoint ({', '.join(SINGLE_FILE_SUFFIXES)})")
        cls = StableDiffusionXLPipeline if _is_sdxl_checkpoint(path) else StableDiffusionPipeline
        # The service never downloads: a checkpoint's configs come from the local hub cache or a local folder.
        kwargs: dict[str, Any] = {**_dtype_kwarg(dtype), "local_files_only": True}
        if settings.single_file_config:
            kwargs["config"] = settings.single_file_config
        try:
            return cls.from_single_file(str(path), **kwargs)
        except OSError as exc:
            raise RuntimeError(
                f"cannot configure the checkpoint '{path.name}' offline ({type(exc).__name__}); set "
                f"NEXA_IMAGE_SINGLE_FILE_CONFIG to a diffusers folder of the same architecture"
            ) from exc
    return AutoPipelineForText2Image.from_pretrained(str(diffusers_folder(path)), **_dtype_kwarg(dtype))


def _native_size(pipeline: Any, vae_scale_factor: int) -> int:
    """The pipeline's own default size: its denoiser's sample size in latent pixels, scaled up
    (diffusers computes the default height and width the same way)."""
    denoiser = getattr(pipeline, "unet", None) or getattr(pipeline, "transformer", None)
    sample = getattr(getattr(denoiser, "config", None), "sample_size", None)
    sample = sample or getattr(pipeline, "default_sample_size", None) or 64
    if isinstance(sample, list | tuple):
        sample = sample[0]
    return int(sample) * vae_scale_factor


class DiffusersEngine:
    """An ImageEngine over a diffusers pipeline; build it with `load`."""

    def __init__(self, name: str, text2image: Any, device: str, concurrency: int) -> None:
        from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

        self.name = name
        self.device = device
        self.slots = concurrency
        self.vae_scale_factor = int(getattr(text2image, "vae_scale_factor", 8))
        self.native_size = _native_size(text2image, self.vae_scale_factor)
        self._slots: queue.Queue[tuple[Any, Any]] = queue.Queue()
        for index in range(concurrency):
            if index == 0:
                txt = text2image
            else:
                scheduler = type(text2image.scheduler).from_config(text2image.scheduler.config)
                txt = AutoPipelineForText2Image.from_pipe(text2image, scheduler=scheduler)
            img = AutoPipelineForImage2Image.from_pipe(txt)
            for pipe in (txt, img):
                pipe.set_progress_bar_config(disable=True)
            self._slots.put((txt, img))

    @classmethod
    def load(cls, model: ResolvedModel, settings: Settings) -> DiffusersEngine:
        torch.set_num_threads(settings.threads)
        device = pick_device(settings.device)
        dtype = pick_dtype(settings.dtype, device)
        pipe = _load_text2image(model.path, settings, dtype).to(device)
        log.info("loaded %s on %s (%s, %d threads)", model.name, device, dtype, settings.threads)
        engine = cls(model.name, pipe, device, settings.max_concurrency)
        engine.warm_up()
        return engine

    def warm_up(self) -> None:
        """One tiny step, so the first request does not pay for kernel selection and allocator growth."""
        size = 8 * self.vae_scale_factor
        self.generate(GenerationJob("warm-up", "", size, size, 1, 1.0, [0]))

    def pipelines(self) -> list[tuple[Any, Any]]:
        """The (txt2img, img2img) pipeline pair of each concurrency slot (for inspection; not thread-safe)."""
        return list(self._slots.queue)

    @contextmanager
    def _slot(self) -> Iterator[tuple[Any, Any]]:
        # Never blocks in practice: the admission queue lets at most `concurrency` callers in.
        pair = self._slots.get(timeout=600)
        try:
            yield pair
        finally:
            self._slots.put(pair)

    def close(self) -> None:
        while not self._slots.empty():
            self._slots.get_nowait()

    def generate(self, job: GenerationJob, cancel: threading.Event | None = None) -> GenerationResult:
        # CPU generators give the same noise for a seed on every device, so a seed means one image.
        generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in job.seeds]

        def step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            # Runs after every denoising step: a client that left stops the loop here, not after the
            # last step (nor after the VAE decode that would follow).
            if cancel is not None and cancel.is_set():
                raise GenerationCancelled(f"stopped after step {step + 1} of {job.steps}")
            return tensors

        common: dict[str, Any] = {
            "prompt": job.prompt,
            "negative_prompt": job.negative_prompt or None,
            "num_inference_steps": job.steps,
            "guidance_scale": job.cfg_scale,
            "num_images_per_prompt": len(job.seeds),
            "generator": generators,
            "output_type": "pil",
            "callback_on_step_end": step_end,
        }
        started = time.perf_counter()
        with self._slot() as (txt, img), torch.inference_mode():
            if job.init_image is None:
                output = txt(width=job.width, height=job.height, **common)
                steps_run = job.steps
            else:
                output = img(image=job.init_image, strength=job.strength, **common)
                steps_run = min(int(job.steps * job.strength), job.steps)
        return GenerationResult(list(output.images), steps_run, time.perf_counter() - started)


def load_engine(model: ResolvedModel, settings: Settings) -> DiffusersEngine:
    """`DiffusersEngine.load` as a function (what a worker process calls)."""
    return DiffusersEngine.load(model, settings)
