"""Image generation wire types: Nexa's /v1/txt2img and /v1/img2img, and OpenAI's /v1/images/generations.

Hard limits live here (what no deployment accepts); the configured bounds (max size, max steps)
are checked by the service, which knows its settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PROMPT_CHARS = 4000


class Txt2ImgRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    image_path: str = Field(
        default="", max_length=4096, description="Ignored by txt2img (Nexa's clients send it empty)."
    )
    cfg_scale: float = Field(default=7.0, ge=0.0, le=30.0, description="Classifier-free guidance scale.")
    width: int = Field(default=256, ge=8, le=4096, multiple_of=8)
    height: int = Field(default=256, ge=8, le=4096, multiple_of=8)
    sample_steps: int = Field(default=20, ge=1, le=1000)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, description="Same seed, same image bytes.")
    model: str | None = None


class Img2ImgRequest(Txt2ImgRequest):
    image_path: str = Field(
        default="",
        max_length=4096,
        description="A file inside the service's configured input folder (relative to it).",
    )
    image: str | None = Field(default=None, description="The input image as base64 or a data: URL.")
    strength: float = Field(default=0.75, gt=0.0, le=1.0, description="How far to move away from the input image.")


class ImageData(BaseModel):
    base64: str = Field(description="The PNG, base64-encoded.")
    url: str | None = Field(default=None, description="Where the PNG can be downloaded from this server.")
    seed: int | None = Field(default=None, description="The seed that made this image (send it to make it again).")


class ImageResponse(BaseModel):
    created: float
    data: list[ImageData]


class ImagesGenerationRequest(BaseModel):
    """OpenAI's images.generate request; the extra fields are this server's extensions."""

    model_config = ConfigDict(extra="ignore")

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = None
    n: int = Field(default=1, ge=1, le=4)
    size: str = Field(default="256x256", pattern=r"^[0-9]{1,4}x[0-9]{1,4}$", description="WIDTHxHEIGHT.")
    response_format: Literal["url", "b64_json"] = "url"
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    sample_steps: int | None = Field(default=None, ge=1, le=1000)
    cfg_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)


class OpenAIImage(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[OpenAIImage]
