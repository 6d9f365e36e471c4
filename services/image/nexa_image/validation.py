"""The configured bounds on a request (the schemas hold the limits no deployment exceeds)."""

from __future__ import annotations

import math

from nexa_common.errors import APIError

from .settings import Settings


def size_multiple(vae_scale_factor: int) -> int:
    """Sizes must divide into whole latent pixels, and the seed's API promises multiples of 8."""
    return math.lcm(8, vae_scale_factor)


def check_size(width: int, height: int, settings: Settings, vae_scale_factor: int, *, param: str | None = None) -> None:
    """`param` names the request field when it is not width/height themselves (OpenAI's `size`)."""
    multiple = size_multiple(vae_scale_factor)
    for name, value, largest in (("width", width, settings.max_width), ("height", height, settings.max_height)):
        if value % multiple or not settings.min_size <= value <= largest:
            what = f"The {name} in '{param}'" if param else f"'{name}'"
            raise APIError(
                400,
                f"{what} is {value}; it must be a multiple of {multiple} between {settings.min_size} and "
                f"{largest} for this model and server.",
                param=param or name,
                code="invalid_size",
            )


def check_steps(steps: int, settings: Settings, model_steps: int) -> None:
    """`model_steps`: the most the model's scheduler can place (the server's setting may allow more)."""
    largest = min(settings.max_steps, model_steps)
    if not 1 <= steps <= largest:
        whose = "this server" if largest == settings.max_steps else "this model's scheduler"
        raise APIError(
            400,
            f"'sample_steps' is {steps}; {whose} allows 1 to {largest}.",
            param="sample_steps",
            code="invalid_steps",
        )


def check_strength(steps: int, strength: float) -> None:
    # img2img runs int(steps * strength) of the steps; zero would return the input unchanged.
    if int(steps * strength) < 1:
        raise APIError(
            400,
            f"'sample_steps' x 'strength' is {steps * strength:g}; it must be at least 1 (img2img runs that many "
            f"steps). Raise one of them.",
            param="strength",
            code="invalid_strength",
        )


def parse_size(size: str) -> tuple[int, int]:
    """OpenAI's `WIDTHxHEIGHT` (the schema has checked its shape)."""
    width, _, height = size.partition("x")
    return int(width), int(height)
