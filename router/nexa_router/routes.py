"""The public /v1 routes: each declared explicitly with its wire types, each forwarding raw bytes.

Declaring every route (rather than one catch-all) keeps the OpenAPI document complete, and unknown
paths answer 404 at the router instead of being sent on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel

from nexa_common.catalogue import Modality
from nexa_common.errors import error_responses
from nexa_common.schemas import audio, embeddings, image, text

from .auth import require_api_key
from .proxy import forward
from .settings import Settings

BodyKind = Literal["json", "multipart", "none"]


@dataclass(frozen=True)
class ProxyRoute:
    path: str
    modality: Modality
    operation_id: str
    summary: str
    body: BodyKind
    request_model: type[BaseModel] | None
    response_model: Any
    limit_setting: str = "max_json_body_bytes"
    method: str = "POST"
    streams: bool = False
    """Answers server-sent events when the request says `"stream": true`."""


# What a forwarded request may answer: the service's own errors (400, 429, 503 while loading, 507
# when image storage is full) and the router's (401, 413, 502, 503, 504).
_ERRORS = (400, 401, 413, 429, 500, 502, 503, 504)
_EXTRA_ERRORS = {Modality.TEXT: (), Modality.IMAGE: (507,), Modality.AUDIO: (415,)}

PROXY_ROUTES: tuple[ProxyRoute, ...] = (
    ProxyRoute("/v1/completions", Modality.TEXT, "createCompletion",
               "Continue a prompt (the seed's `result` and OpenAI's `choices`)", "json",
               text.CompletionRequest, text.CompletionResponse, streams=True),
    ProxyRoute("/v1/chat/completions", Modality.TEXT, "createChatCompletion",
               "Answer a conversation, optionally with tools", "json",
               text.ChatCompletionRequest, text.ChatCompletionResponse, streams=True),
    ProxyRoute("/v1/function-calling", Modality.TEXT, "createFunctionCall",
               "Pick a tool and its arguments for the conversation (the seed's route)", "json",
               text.FunctionCallingRequest, text.ChatCompletionResponse, streams=True),
    ProxyRoute("/v1/embeddings", Modality.TEXT, "createEmbedding",
               "Embed text or token ids as vectors (OpenAI's route)", "json",
               embeddings.EmbeddingRequest, embeddings.EmbeddingResponse),
    ProxyRoute("/v1/txt2img", Modality.IMAGE, "createTxt2Img",
               "Generate an image from a prompt (the seed's route)", "json",
               image.Txt2ImgRequest, image.ImageResponse),
    ProxyRoute("/v1/img2img", Modality.IMAGE, "createImg2Img",
               "Transform an input image according to a prompt (the seed's route)", "json",
               image.Img2ImgRequest, image.ImageResponse, limit_setting="max_img2img_body_bytes"),
    ProxyRoute("/v1/images/generations", Modality.IMAGE, "createImage",
               "Generate images from a prompt (OpenAI's route)", "json",
               image.ImagesGenerationRequest, image.ImagesResponse),
    ProxyRoute("/v1/images/files/{name}", Modality.IMAGE, "getImageFile",
               "Download a generated image (the `url` of an image answer)", "none",
               None, None, method="GET"),
    ProxyRoute("/v1/audio/transcriptions", Modality.AUDIO, "createTranscription",
               "Transcribe an audio file", "multipart",
               None, audio.TranscriptionResponse | audio.VerboseTranscriptionResponse,
               limit_setting="max_audio_body_bytes"),
    ProxyRoute("/v1/audio/translations", Modality.AUDIO, "createTranslation",
               "Translate an audio file into English text", "multipart",
               None, audio.TranscriptionResponse | audio.VerboseTranscriptionResponse,
               limit_setting="max_audio_body_bytes"),
)  # fmt: skip


def _responses(route: ProxyRoute) -> dict[int | str, dict[str, Any]]:
    if route.body == "none":
        responses = error_responses(400, 401, 404, 500, 502, 503, 504)
        responses[200] = {
            "description": "The PNG file.",
            "content": {"image/png": {"schema": {"type": "string", "format": "binary"}}},
        }
        return dict(responses)
    responses = dict(error_responses(*_ERRORS, *_EXTRA_ERRORS[route.modality]))
    if route.streams:
        responses[200] = {
            "description": 'JSON; with `"stream": true`, server-sent events, one chunk per `data:` line, then '
            '`data: [DONE]`. A failure after the stream began arrives as a last `data: {"error": {...}}` event.',
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        }
    elif route.body == "multipart":
        responses[200] = {
            "description": "JSON for response_format json and verbose_json; text for text, srt and vtt.",
            "content": {"text/plain": {"schema": {"type": "string"}}, "text/vtt": {"schema": {"type": "string"}}},
        }
    return responses


def _handler(route: ProxyRoute, settings: Settings) -> Callable[..., Awaitable[Response]]:
    modality = route.modality
    limit: int = getattr(settings, route.limit_setting)
    setting = f"NEXA_ROUTER_{route.limit_setting.upper()}"
    stream_body = route.body == "multipart"

    if route.body == "none":

        async def get_file(request: Request, name: str) -> Response:
            # `name` is declared for the document; the raw path is what is forwarded.
            return await forward(request, request.app.state.upstreams.get(modality), modality, limit, setting, False)

        return get_file

    async def proxy(request: Request) -> Response:
        return await forward(request, request.app.state.upstreams.get(modality), modality, limit, setting, stream_body)

    return proxy


def add_proxy_routes(app: FastAPI, settings: Settings) -> None:
    # Without keys the check is left out entirely: nothing to run per request, and the document
    # then (rightly) declares no security.
    v1 = APIRouter(dependencies=[Depends(require_api_key)] if settings.api_keys else [])
    for route in PROXY_ROUTES:
        v1.add_api_route(
            route.path,
            _handler(route, settings),
            methods=[route.method],
            operation_id=route.operation_id,
            summary=route.summary,
            tags=[route.modality.value],
            response_model=route.response_model,
            response_class=Response if route.body == "none" else JSONResponse,
            responses=_responses(route),
        )
    app.include_router(v1)
