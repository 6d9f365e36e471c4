"""The router's OpenAPI document: every public route, with the shared wire types as its schemas."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from nexa_common.schemas import audio, image, text
from nexa_router import auth
from nexa_router.app import create_app
from nexa_router.settings import Settings

PUBLIC = {
    ("/health", "get"),
    ("/ready", "get"),
    ("/v1/models", "get"),
    ("/v1/models/{model_id}", "get"),
    ("/v1/operator/models", "get"),
    ("/v1/operator/models/load", "post"),
    ("/v1/operator/models/unload", "post"),
    ("/v1/completions", "post"),
    ("/v1/chat/completions", "post"),
    ("/v1/function-calling", "post"),
    ("/v1/txt2img", "post"),
    ("/v1/img2img", "post"),
    ("/v1/images/generations", "post"),
    ("/v1/images/files/{name}", "get"),
    ("/v1/audio/transcriptions", "post"),
    ("/v1/audio/translations", "post"),
    ("/v1/audio/speech", "post"),
    ("/v1/responses", "post"),
    ("/v1/responses/{response_id}", "get"),
    ("/v1/responses/{response_id}", "delete"),
    ("/v1/responses/{response_id}/input_items", "get"),
    ("/v1/responses/{response_id}/cancel", "post"),
    ("/v1/messages", "post"),
    ("/v1/messages/count_tokens", "post"),
}
JSON_BODIES = {
    "/v1/completions": ("CompletionRequest", "CompletionResponse"),
    "/v1/chat/completions": ("ChatCompletionRequest", "ChatCompletionResponse"),
    "/v1/function-calling": ("FunctionCallingRequest", "ChatCompletionResponse"),
    "/v1/txt2img": ("Txt2ImgRequest", "ImageResponse"),
    "/v1/img2img": ("Img2ImgRequest", "ImageResponse"),
    "/v1/images/generations": ("ImagesGenerationRequest", "ImagesResponse"),
}


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    return create_app(Settings(text_url="", image_url="", audio_url="")).openapi()


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in _refs(value)]
    if isinstance(node, list):
        return [r for value in node for r in _refs(value)]
    return []


def _resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    assert ref.startswith("#/components/schemas/"), ref
    return doc["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_every_public_route_is_listed_and_no_catch_all(doc: dict[str, Any]) -> None:
    listed = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert listed == PUBLIC
    assert doc["openapi"].startswith("3.")
    assert len({op["operationId"] for ops in doc["paths"].values() for op in ops.values()}) == len(PUBLIC)


def test_every_reference_resolves(doc: dict[str, Any]) -> None:
    refs = _refs(doc)
    assert len(refs) > 50
    for ref in refs:
        assert isinstance(_resolve(doc, ref), dict)


@pytest.mark.parametrize("path", sorted(JSON_BODIES))
def test_json_routes_have_shared_request_and_response_schemas(doc: dict[str, Any], path: str) -> None:
    request_name, response_name = JSON_BODIES[path]
    operation = doc["paths"][path]["post"]
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {"$ref": f"#/components/schemas/{request_name}"}
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": f"#/components/schemas/{response_name}"}
    for status in ("400", "401", "413", "429", "503", "504"):
        error = operation["responses"][status]["content"]["application/json"]["schema"]
        assert error == {"$ref": "#/components/schemas/ErrorResponse"}
    assert "security" not in operation  # no keys configured: none needed


def test_keys_are_declared_when_configured() -> None:
    doc = create_app(Settings(text_url="", image_url="", audio_url="", api_keys=["k"])).openapi()
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            # Either header carries the key: `Authorization: Bearer` or `x-api-key` (Anthropic's clients).
            expected = [{"HTTPBearer": []}, {"APIKeyHeader": []}] if path.startswith("/v1/") else None
            assert operation.get("security") == expected, path
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["components"]["securitySchemes"]["APIKeyHeader"] == {
        "type": "apiKey", "in": "header", "name": "x-api-key", "description": auth.api_key_header.model.description,
    }  # fmt: skip


def test_request_schemas_are_the_shared_models(doc: dict[str, Any]) -> None:
    schemas = doc["components"]["schemas"]
    chat = schemas["ChatCompletionRequest"]
    assert chat["required"] == ["messages"]
    assert set(text.ChatCompletionRequest.model_fields) <= set(chat["properties"])
    assert set(image.Txt2ImgRequest.model_fields) <= set(schemas["Txt2ImgRequest"]["properties"])
    assert schemas["FunctionCallingRequest"]["required"] == ["messages", "tools"]
    assert "event-stream" in str(doc["paths"]["/v1/chat/completions"]["post"]["responses"]["200"]["content"])


@pytest.mark.parametrize("path", ["/v1/audio/transcriptions", "/v1/audio/translations"])
def test_audio_routes_document_the_multipart_form(doc: dict[str, Any], path: str) -> None:
    operation = doc["paths"][path]["post"]
    form = _resolve(doc, operation["requestBody"]["content"]["multipart/form-data"]["schema"]["$ref"])
    assert form["required"] == ["file"]
    assert form["properties"]["file"] == {
        "type": "string",
        "format": "binary",
        "description": form["properties"]["file"]["description"],
    }
    assert {"model", "language", "prompt", "response_format", "temperature", "beam_size"} <= set(form["properties"])
    assert {p["name"] for p in operation["parameters"]} == {"beam_size", "language", "temperature"}
    content = operation["responses"]["200"]["content"]
    assert {"application/json", "text/plain"} <= set(content)
    assert operation["responses"]["413"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_speech_route_documents_its_body_and_audio_answers(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/audio/speech"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    schema = _resolve(doc, body["$ref"])
    assert schema["required"] == ["input"]
    assert set(audio.SpeechRequest.model_fields) <= set(schema["properties"])
    content = operation["responses"]["200"]["content"]
    assert {"audio/mpeg", "audio/ogg; codecs=opus", "audio/wav", "audio/pcm", "text/event-stream"} <= set(content)
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/ErrorResponse")


def test_image_file_route(doc: dict[str, Any]) -> None:
    operation = doc["paths"]["/v1/images/files/{name}"]["get"]
    assert "image/png" in operation["responses"]["200"]["content"]
    assert [p["name"] for p in operation["parameters"]] == ["name"]
    assert "404" in operation["responses"]


async def test_served_document_and_docs_page(fault_router: str) -> None:
    async with httpx.AsyncClient(timeout=20.0) as client:
        served = await client.get(fault_router + "/openapi.json")
        page = await client.get(fault_router + "/docs")
    assert served.status_code == 200
    assert {(p, m) for p, ops in served.json()["paths"].items() for m in ops} == PUBLIC
    assert page.status_code == 200
