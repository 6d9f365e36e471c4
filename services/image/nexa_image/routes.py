"""The image API: Nexa's /v1/txt2img and /v1/img2img, OpenAI's /v1/images/generations, and the
route that serves saved images back (the `url` of each result)."""

from __future__ import annotations

import base64
import dataclasses
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import ValidationError
from starlette.datastructures import UploadFile

from nexa_common.errors import APIError, error_responses
from nexa_common.fields import account_fields
from nexa_common.kit.service import get_state
from nexa_common.modalities import Capability
from nexa_common.public_url import public_base_url
from nexa_common.schemas.image import (
    ImageData,
    ImageResponse,
    ImagesGenerationRequest,
    ImagesResponse,
    Img2ImgRequest,
    OpenAIImage,
    Txt2ImgRequest,
)

from .engine import GenerationJob, ImageEngine
from .generation import GeneratedImage, StateDep, Wanted, generate, seeds_for
from .images import decode_image
from .inputs import decode_base64_image, read_input_file, resolve_input_path
from .outputs import NAME_PATTERN
from .settings import Settings
from .validation import check_size, check_steps, check_strength, parse_size

FILES_ROUTE = "/v1/images/files"
DEFAULT_CFG_SCALE = 7.0

router = APIRouter()


_GENERATION_ERRORS = error_responses(400, 404, 429, 500, 503, 507)


def file_url(request: Request, name: str) -> str:
    """An absolute URL, as OpenAI's are: the client's view of this API's base (the setting, or what a
    proxy or the router says in X-Forwarded-*), then `/v1/images/files/<name>`, which the router proxies."""
    settings: Settings = get_state(request).settings
    return f"{public_base_url(request, settings.public_base_url)}{FILES_ROUTE}/{name}"


def _seed_response(request: Request, images: list[GeneratedImage]) -> ImageResponse:
    return ImageResponse(
        created=time.time(),
        data=[
            ImageData(
                base64=base64.b64encode(img.png).decode(),
                url=file_url(request, img.name) if img.name else None,
                seed=img.seed,
            )
            for img in images
        ],
    )


def _job(body: Txt2ImgRequest, settings: Settings, vae_scale_factor: int) -> GenerationJob:
    check_size(body.width, body.height, settings, vae_scale_factor)
    check_steps(body.sample_steps, settings)
    return GenerationJob(
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        width=body.width,
        height=body.height,
        steps=body.sample_steps,
        cfg_scale=body.cfg_scale,
        seeds=seeds_for(body.seed, 1),
    )


@router.post("/v1/txt2img", response_model=ImageResponse, responses=_GENERATION_ERRORS, tags=["images"])
async def txt2img(body: Txt2ImgRequest, request: Request, state: StateDep) -> ImageResponse:
    """Generate an image from a prompt (Nexa's route). `url` is an absolute URL of the PNG (see GET /v1/images/files)."""
    account_fields(request, body, strict=state.settings.strict_fields)

    def job(engine: ImageEngine) -> GenerationJob:
        return _job(body, state.settings, engine.vae_scale_factor)

    images = await generate(request, state, Wanted(body, Capability.IMAGE_GENERATION), job, task="txt2img", save=True)
    return _seed_response(request, images)


def _img2img_openapi() -> dict[str, Any]:
    schema = Img2ImgRequest.model_json_schema()
    form = {**schema, "properties": {**schema["properties"], "image": {"type": "string", "format": "binary"}}}
    form.pop("title", None)
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema}, "multipart/form-data": {"schema": form}},
        }
    }


async def _read_img2img(request: Request, settings: Settings) -> tuple[Img2ImgRequest, bytes | None]:
    """The request from JSON or a multipart form; the form's `image` may be a file part."""
    content_type = request.headers.get("content-type", "")
    upload: bytes | None = None
    fields: Any
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        async with request.form(max_files=1, max_fields=32) as form:
            fields = {k: v for k, v in form.items() if not isinstance(v, UploadFile)}
            part = form.get("image")
            if isinstance(part, UploadFile):
                upload = await part.read(settings.max_input_bytes + 1)
                if len(upload) > settings.max_input_bytes:
                    raise APIError(
                        400,
                        f"The input image is larger than {settings.max_input_bytes} bytes.",
                        param="image",
                        code="image_too_large",
                    )
    else:
        try:
            fields = await request.json()
        except ValueError:
            raise APIError(400, "The request body is not valid JSON.", code="invalid_value") from None
    try:
        return Img2ImgRequest.model_validate(fields), upload
    except ValidationError as exc:
        # The project's handler turns this into the usual 400 naming the field.
        raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None


def _input_image(body: Img2ImgRequest, upload: bytes | None, settings: Settings) -> bytes:
    given = [
        name
        for name, present in (("image", upload is not None or bool(body.image)), ("image_path", bool(body.image_path)))
        if present
    ]
    if len(given) != 1:
        raise APIError(
            400,
            "Give the input image exactly once: as a multipart file 'image', as base64 in 'image', or as "
            "'image_path' inside the server's input folder.",
            param="image",
            code="invalid_image",
        )
    if upload is not None:
        return upload
    if body.image:
        return decode_base64_image(body.image, settings.max_input_bytes)
    return read_input_file(resolve_input_path(settings.input_dir, body.image_path), settings.max_input_bytes)


@router.post(
    "/v1/img2img",
    response_model=ImageResponse,
    responses=_GENERATION_ERRORS,
    tags=["images"],
    openapi_extra=_img2img_openapi(),
)
async def img2img(request: Request, state: StateDep) -> ImageResponse:
    """Change an image to match a prompt (Nexa's route). The input is a multipart file `image`, base64 in
    JSON `image`, or `image_path` inside the server's input folder; it is resized to width x height."""
    settings = state.settings
    body, upload = await _read_img2img(request, settings)
    account_fields(request, body, strict=state.settings.strict_fields)
    check_strength(body.sample_steps, body.strength)
    image = decode_image(_input_image(body, upload, settings), max_pixels=settings.max_input_pixels, param="image")

    def job(engine: ImageEngine) -> GenerationJob:
        sized = _job(body, settings, engine.vae_scale_factor)
        return dataclasses.replace(sized, init_image=image.resize((body.width, body.height)), strength=body.strength)

    images = await generate(request, state, Wanted(body, Capability.IMAGE_EDIT), job, task="img2img", save=True)
    return _seed_response(request, images)


@router.post("/v1/images/generations", response_model=ImagesResponse, responses=_GENERATION_ERRORS, tags=["images"])
async def images_generations(body: ImagesGenerationRequest, request: Request, state: StateDep) -> ImagesResponse:
    """OpenAI's image generation (what `client.images.generate` calls); `sample_steps`, `cfg_scale`, `seed`
    and `negative_prompt` are this server's extensions. `size: "auto"` is the model's native size."""
    settings = state.settings
    account_fields(request, body, strict=settings.strict_fields)
    steps = body.sample_steps or settings.default_steps
    check_steps(steps, settings)

    def job(engine: ImageEngine) -> GenerationJob:
        width, height = (engine.native_size, engine.native_size) if body.size == "auto" else parse_size(body.size)
        check_size(width, height, settings, engine.vae_scale_factor, param="size")
        return GenerationJob(
            prompt=body.prompt,
            negative_prompt=body.negative_prompt,
            width=width,
            height=height,
            steps=steps,
            cfg_scale=DEFAULT_CFG_SCALE if body.cfg_scale is None else body.cfg_scale,
            seeds=seeds_for(body.seed, body.n),
        )

    want_url = body.response_format == "url"
    wanted = Wanted(body, Capability.IMAGE_GENERATION)
    images = await generate(request, state, wanted, job, task="txt2img", save=want_url)
    return ImagesResponse(
        created=int(time.time()),
        data=[
            OpenAIImage(url=file_url(request, img.name))
            if img.name
            else OpenAIImage(b64_json=base64.b64encode(img.png).decode())
            for img in images
        ],
    )


@router.get(
    FILES_ROUTE + "/{name}",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}}, **error_responses(400, 404)},
    tags=["images"],
)
async def image_file(name: str, state: StateDep) -> Response:
    """A generated PNG, by the name in its `url`; files are deleted after a while (see the server's settings)."""
    if not NAME_PATTERN.fullmatch(name):
        raise APIError(400, "Not an image name this server generates.", param="name", code="invalid_name")
    png = state.store.read(name)
    if png is None:
        raise APIError(404, "No such image: it was never made here or has been pruned.", code="image_not_found")
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=3600"})
