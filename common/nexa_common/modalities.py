"""The modality table: which model services exist, and everything the other components derive from it.

Per modality: its name, default model, port, Python package, environment prefix, the error statuses
its routes may answer beyond the common ones, and the public routes it serves (with their body kind,
request and response models, and for multipart routes the form they take). The router builds its
routes, upstreams and OpenAPI document from this table; the CLI, the healthcheck, the Helm chart, the
Makefile and the tests derive from it or are checked against it by a test (tests/unit/test_modalities.py).

Adding a modality: a `Modality` member, a `ModalitySpec` in `MODALITIES`, its default model in the
catalogue, and the new service's own files (docs/architecture.md walks through it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel

from .schemas import audio, image, messages, responses, text


class Modality(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    AUDIO = "audio"


class Capability(StrEnum):
    """What a model can do; each route needs one (the words of the `/v1/models` card)."""

    COMPLETIONS = "completions"
    CHAT = "chat"
    TOOLS = "tools"
    JSON_SCHEMA = "json_schema"
    EMBEDDINGS = "embeddings"
    TRANSCRIPTION = "transcription"
    TRANSLATION = "translation"
    SPEECH = "speech"
    IMAGE_GENERATION = "image_generation"
    IMAGE_EDIT = "image_edit"


BodyKind = Literal["json", "multipart", "none"]
ServedBy = Literal["service", "router"]


@dataclass(frozen=True)
class FormSpec:
    """A multipart route's form: the model of its text fields, its file parts, and the fields that Nexa's
    original routes also took as query parameters."""

    model: type[BaseModel]
    files: dict[str, str]
    """File part name -> description."""
    query: tuple[str, ...] = ()
    """Fields also accepted as query parameters (the form field wins)."""
    name: str = ""
    """The component name of the form's schema in the OpenAPI document."""


@dataclass(frozen=True)
class Route:
    """A public route: the router declares it; the service of its modality answers it (forwarded as
    is), or for `served_by="router"` the router itself, on that modality's models."""

    path: str
    operation_id: str
    summary: str
    body: BodyKind
    request_model: type[BaseModel] | None
    response_model: Any
    capability: Capability | None
    """What the model named by `model` must be able to do for this route (None: no model involved)."""
    limit_setting: str = "max_json_body_bytes"
    """The router setting that caps the request body."""
    method: str = "POST"
    streams: bool = False
    """Answers server-sent events when the request says `"stream": true`."""
    media: tuple[str, ...] = ()
    """Media types of a binary answer (speech audio), streamed as the service produces it; empty: JSON."""
    form: FormSpec | None = None
    """For multipart routes: what the form holds (documented per route, never assumed)."""
    served_by: ServedBy = "service"
    """`router`: answered by the router's translation layers (`nexa_router.apis`: the Responses and
    Messages APIs onto the service's chat route, and the router's own store of responses), so the
    service itself does not serve it."""


@dataclass(frozen=True)
class ModalitySpec:
    modality: Modality
    default_model: str
    port: int
    extra_errors: tuple[int, ...]
    """Statuses this modality's routes may answer beyond the common ones (e.g. 507 when image storage is full)."""
    routes: tuple[Route, ...]
    description: str = ""
    onnx: bool = False
    """Whether the service has an ONNX Runtime backend (`nexa server onnx MODEL`)."""
    extras: tuple[str, ...] = field(default=())
    """Optional extras `make install` installs for the service (e.g. text's `onnx`)."""

    @property
    def name(self) -> str:
        return self.modality.value

    @property
    def package(self) -> str:
        """The service's import package (`python -m nexa_<name>`)."""
        return f"nexa_{self.name}"

    @property
    def distribution(self) -> str:
        """The service's PyPI distribution name."""
        return f"nexa-{self.name}"

    @property
    def folder(self) -> str:
        """Where the service lives in the repository."""
        return f"services/{self.name}"

    @property
    def env_prefix(self) -> str:
        return f"NEXA_{self.name.upper()}_"

    @property
    def router_url_env(self) -> str:
        """The router's setting that points at this service."""
        return f"NEXA_ROUTER_{self.name.upper()}_URL"

    @property
    def article(self) -> str:
        """'a' or 'an', for messages ("an audio model")."""
        return "an" if self.name[0] in "aeiou" else "a"


_AUDIO_FORM = FormSpec(
    audio.TranscriptionForm,
    {"file": "The audio file (wav, flac, mp3, ogg, m4a…)."},
    query=("beam_size", "language", "temperature"),
    name="AudioRequestForm",
)

MODALITIES: tuple[ModalitySpec, ...] = (
    ModalitySpec(
        Modality.TEXT, "smollm2", 8001, (),
        (
            Route("/v1/completions", "createCompletion",
                  "Continue a prompt (Nexa's `result` and OpenAI's `choices`)", "json",
                  text.CompletionRequest, text.CompletionResponse, Capability.COMPLETIONS, streams=True),
            Route("/v1/chat/completions", "createChatCompletion",
                  "Answer a conversation, optionally with tools", "json",
                  text.ChatCompletionRequest, text.ChatCompletionResponse, Capability.CHAT, streams=True),
            Route("/v1/function-calling", "createFunctionCall",
                  "Pick a tool and its arguments for the conversation (Nexa's route)", "json",
                  text.FunctionCallingRequest, text.ChatCompletionResponse, Capability.TOOLS, streams=True),
            # OpenAI's Responses API and Anthropic's Messages API: the router translates them onto
            # /v1/chat/completions (one generation path) and keeps the stored responses.
            Route("/v1/responses", "createResponse",
                  "Answer input items (optionally continuing a stored response), plain or streamed", "json",
                  responses.ResponsesRequest, responses.ResponseObject, Capability.CHAT, streams=True,
                  served_by="router"),
            Route("/v1/responses/{response_id}", "getResponse", "A stored (or streaming) response", "none",
                  None, responses.ResponseObject, None, method="GET", served_by="router"),
            Route("/v1/responses/{response_id}", "deleteResponse", "Delete a stored response", "none",
                  None, responses.DeletedResponse, None, method="DELETE", served_by="router"),
            Route("/v1/responses/{response_id}/input_items", "listInputItems",
                  "The input items of a stored response", "none",
                  None, responses.InputItemList, None, method="GET", served_by="router"),
            Route("/v1/responses/{response_id}/cancel", "cancelResponse",
                  "Stop a response that is still streaming", "none",
                  None, responses.ResponseObject, None, served_by="router"),
            Route("/v1/messages", "createMessage",
                  "Anthropic's Messages API on the text models, plain or streamed", "json",
                  messages.MessagesRequest, messages.MessageObject, Capability.CHAT, streams=True,
                  served_by="router"),
            Route("/v1/messages/count_tokens", "countMessageTokens",
                  "How many input tokens a Messages request would take", "json",
                  messages.CountTokensRequest, messages.TokenCount, Capability.CHAT, served_by="router"),
        ),
        "completions, chat and function calling", onnx=True, extras=("onnx",),
    ),
    ModalitySpec(
        Modality.IMAGE, "tiny-sd", 8002, (507,),
        (
            Route("/v1/txt2img", "createTxt2Img",
                  "Generate an image from a prompt (Nexa's route)", "json",
                  image.Txt2ImgRequest, image.ImageResponse, Capability.IMAGE_GENERATION),
            Route("/v1/img2img", "createImg2Img",
                  "Transform an input image according to a prompt (Nexa's route)", "json",
                  image.Img2ImgRequest, image.ImageResponse, Capability.IMAGE_EDIT,
                  limit_setting="max_img2img_body_bytes"),
            Route("/v1/images/generations", "createImage",
                  "Generate images from a prompt (OpenAI's route)", "json",
                  image.ImagesGenerationRequest, image.ImagesResponse, Capability.IMAGE_GENERATION),
            Route("/v1/images/files/{name}", "getImageFile",
                  "Download a generated image (the `url` of an image answer)", "none",
                  None, None, None, method="GET"),
        ),
        "txt2img, img2img and images.generate",
    ),
    ModalitySpec(
        Modality.AUDIO, "whisper-tiny.en", 8003, (415,),
        (
            Route("/v1/audio/transcriptions", "createTranscription",
                  "Transcribe an audio file", "multipart",
                  None, audio.TranscriptionResponse | audio.VerboseTranscriptionResponse, Capability.TRANSCRIPTION,
                  limit_setting="max_audio_body_bytes", form=_AUDIO_FORM),
            Route("/v1/audio/translations", "createTranslation",
                  "Translate an audio file into English text", "multipart",
                  None, audio.TranscriptionResponse | audio.VerboseTranscriptionResponse, Capability.TRANSLATION,
                  limit_setting="max_audio_body_bytes", form=_AUDIO_FORM),
            Route("/v1/audio/speech", "createSpeech",
                  "Speak a text (mp3, opus, aac, flac, wav or pcm, streamed sentence by sentence)", "json",
                  audio.SpeechRequest, None, Capability.SPEECH, media=tuple(audio.SPEECH_MEDIA_TYPES.values())),
        ),
        "transcriptions, translations and speech",
    ),
)  # fmt: skip


def spec(modality: Modality | str) -> ModalitySpec:
    """The table row of a modality; raises KeyError for one the table does not have."""
    wanted = Modality(modality)
    return next(s for s in MODALITIES if s.modality is wanted)


def all_routes() -> tuple[tuple[ModalitySpec, Route], ...]:
    """Every public route of the router."""
    return tuple((s, r) for s in MODALITIES for r in s.routes)


def forwarded_routes() -> tuple[tuple[ModalitySpec, Route], ...]:
    """The public routes the router forwards to the service of their modality."""
    return tuple((s, r) for s, r in all_routes() if r.served_by == "service")


def router_route(operation_id: str) -> Route:
    """A route the router answers itself, by its operation id (raises StopIteration for none)."""
    return next(r for _, r in all_routes() if r.operation_id == operation_id and r.served_by == "router")


def route_for(capability: Capability) -> Route | None:
    """The first route that serves a capability (for "use /v1/... instead" messages)."""
    return next((r for _, r in forwarded_routes() if r.capability is capability), None)


def defaults() -> dict[Modality, str]:
    return {s.modality: s.default_model for s in MODALITIES}
