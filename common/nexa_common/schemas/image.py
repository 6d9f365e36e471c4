"""Image generation wire types: Nexa's /v1/txt2img and /v1/img2img, and OpenAI's /v1/images/generations.

Hard limits live here (what no deployment accepts); the configured bounds (max size, max steps)
are checked by the service, which knows its settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

from ..fields import AccountedRequest, Advisory
from .keep_alive import KeepAlive

MAX_PROMPT_CHARS = 4000


class Txt2ImgRequest(AccountedRequest):
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
    model: str | None = Field(
        default=None,
        max_length=512,
        description="The model to use (see /v1/models); absent: the service's default model.",
    )
    keep_alive: KeepAlive | None = None

    def ignored_fields(self) -> list[str]:
        # txt2img has no input image: a non-empty `image_path` (img2img's field) is not used.
        unused = ["image_path"] if self.image_path and type(self) is Txt2ImgRequest else []
        return unused + super().ignored_fields()


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


class ImagesGenerationRequest(AccountedRequest):
    """OpenAI's images.generate request; the extra fields are this server's extensions."""

    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS)
    model: str | None = Field(
        default=None,
        max_length=512,
        description="The model to use (see /v1/models); absent: the service's default model.",
    )
    keep_alive: KeepAlive | None = None
    n: int = Field(default=1, ge=1, le=4)
    size: str = Field(
        default="256x256",
        pattern=r"^([0-9]{1,4}x[0-9]{1,4}|auto)$",
        description="WIDTHxHEIGHT, or `auto`: the model's native size.",
    )
    response_format: Literal["url", "b64_json"] = "url"
    output_format: Literal["png", "jpeg", "webp"] | None = Field(default=None, description="Only png.")
    background: Literal["auto", "opaque", "transparent"] | None = Field(
        default=None, description="auto or opaque (images here have no alpha channel)."
    )
    stream: bool | None = Field(default=None, description="Not supported: only false.")
    quality: str | None = Advisory(description="the models here have no quality tiers (sample_steps sets the effort).")
    style: str | None = Advisory(description="dall-e-3's vivid/natural; put the style in the prompt.")
    moderation: str | None = Advisory(description="content-moderation strictness; nothing is moderated here.")
    output_compression: int | None = Advisory(description="jpeg/webp compression; images here are PNG.")
    partial_images: int | None = Advisory(description="partial images of a streamed answer; answers are not streamed.")
    user: str | None = Advisory(description="an end-user ID for abuse monitoring.")
    negative_prompt: str = Field(default="", max_length=MAX_PROMPT_CHARS)
    sample_steps: int | None = Field(default=None, ge=1, le=1000)
    cfg_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)

    @field_validator("output_format")
    @classmethod
    def _png_only(cls, value: str | None) -> str | None:
        if value not in (None, "png"):
            raise ValueError(f"'output_format' {value!r} is not supported by this server: images are PNG; send 'png'.")
        return value

    @field_validator("background")
    @classmethod
    def _opaque_only(cls, value: str | None) -> str | None:
        if value == "transparent":
            raise ValueError(
                "'background' 'transparent' is not supported by this server: images have no alpha channel."
            )
        return value

    @field_validator("stream")
    @classmethod
    def _not_streamed(cls, value: bool | None) -> bool | None:
        if value:
            raise ValueError("'stream' is not supported by this server for images: send false or leave it out.")
        return value


class OpenAIImage(BaseModel):
    b64_json: str | None = None
    url: str | None = None
    revised_prompt: str | None = None


class ImagesResponse(BaseModel):
    created: int
    data: list[OpenAIImage]
