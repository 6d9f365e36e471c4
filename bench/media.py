"""Audio and image: the library called directly vs the service vs through the router."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from .harness import summary

IMAGE_REQUEST: dict[str, Any] = {
    "prompt": "a lighthouse at dusk",
    "width": 64,
    "height": 64,
    "sample_steps": 4,
    "seed": 1,
    "cfg_scale": 7.0,
}


def _compare(paths: dict[str, Any], repetitions: int, extra: dict[str, float] | None = None) -> dict[str, Any]:
    """Interleaved timings of each path; ratio = direct time / path time (1.0 = no overhead)."""
    for fn in paths.values():  # warm-up, excluded
        fn()
    times: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(repetitions):
        for name, fn in paths.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    out: dict[str, Any] = {name: {"seconds": summary(values)} for name, values in times.items()}
    for name in paths:
        out[name]["ratio"] = out["direct"]["seconds"]["median"] / out[name]["seconds"]["median"]
        for key, value in (extra or {}).items():
            out[name][key] = out[name]["seconds"]["median"] / value
    return out


def audio(
    model_path: Path, audio_file: Path, settings: dict[str, Any], service_url: str, router_url: str, repetitions: int
) -> dict[str, Any]:
    from faster_whisper import WhisperModel
    from faster_whisper.audio import decode_audio

    from nexa_audio.engine import temperature_schedule

    model = WhisperModel(
        str(model_path), device="cpu", compute_type=settings["compute_type"], cpu_threads=settings["cpu_threads"]
    )
    duration = len(decode_audio(str(audio_file))) / 16000
    data = audio_file.read_bytes()

    def direct() -> None:
        # As the service calls it (beam 5, Whisper's temperature fallback from 0, its VAD setting).
        segments, _ = model.transcribe(
            str(audio_file), beam_size=5, temperature=temperature_schedule(0.0), vad_filter=settings["vad"]
        )
        "".join(s.text for s in segments)

    def over_http(url: str) -> Any:
        client = httpx.Client(base_url=url, timeout=300)

        def call() -> None:
            response = client.post("/v1/audio/transcriptions", files={"file": (audio_file.name, data)})
            response.raise_for_status()

        return call

    result = _compare(
        {"direct": direct, "service": over_http(service_url), "router": over_http(router_url)},
        repetitions,
        extra={"real_time_factor": duration},
    )
    result["audio_seconds"] = duration
    return result


def image(pipeline_path: Path, num_threads: int, service_url: str, router_url: str, repetitions: int) -> dict[str, Any]:
    import torch
    from diffusers import StableDiffusionPipeline

    torch.set_num_threads(num_threads)
    pipe = StableDiffusionPipeline.from_pretrained(str(pipeline_path), safety_checker=None)
    pipe.set_progress_bar_config(disable=True)

    def direct() -> None:
        generator = torch.Generator("cpu").manual_seed(IMAGE_REQUEST["seed"])
        pipe(
            IMAGE_REQUEST["prompt"],
            width=64,
            height=64,
            num_inference_steps=IMAGE_REQUEST["sample_steps"],
            guidance_scale=IMAGE_REQUEST["cfg_scale"],
            generator=generator,
        ).images[0].save("/dev/null", format="PNG")

    def over_http(url: str) -> Any:
        client = httpx.Client(base_url=url, timeout=300)

        def call() -> None:
            client.post("/v1/txt2img", json=IMAGE_REQUEST).raise_for_status()

        return call

    return _compare({"direct": direct, "service": over_http(service_url), "router": over_http(router_url)}, repetitions)
