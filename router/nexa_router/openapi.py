"""The OpenAPI document: the proxy handlers take raw bytes, so their request bodies are added here
from the shared wire types (the same pydantic models the services validate with)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from nexa_common.schemas.audio import TranscriptionForm

from .routes import ProxyRoute

REF_TEMPLATE = "#/components/schemas/{model}"
# The seed sent these as query parameters; form fields are the OpenAI way (and win when both are given).
_SEED_AUDIO_QUERY = ("beam_size", "language", "temperature")


def _audio_form(schemas: dict[str, Any]) -> dict[str, Any]:
    form = TranscriptionForm.model_json_schema(ref_template=REF_TEMPLATE, mode="validation")
    for name, schema in form.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    properties = {
        "file": {"type": "string", "format": "binary", "description": "The audio file (wav, flac, mp3, ogg, m4a…)."},
        **form["properties"],
    }
    schemas["AudioRequestForm"] = {
        "title": "AudioRequestForm",
        "type": "object",
        "properties": properties,
        "required": ["file"],
    }
    return form["properties"]


def _add_schemas(schemas: dict[str, Any], models: list[type[BaseModel]]) -> dict[type[BaseModel], dict[str, Any]]:
    """Add the models' schemas to the document's components; returns each model's `$ref`."""
    refs, defs = models_json_schema([(m, "validation") for m in models], ref_template=REF_TEMPLATE)
    for name, schema in defs.get("$defs", {}).items():
        existing = schemas.get(name)
        if existing is not None and existing != schema:
            # Two different schemas under one name would silently describe one route wrongly.
            raise RuntimeError(f"OpenAPI schema name clash for {name}")
        schemas[name] = schema
    return {model: refs[(model, "validation")] for model in models}


JsonBody = tuple[str, str, type[BaseModel]]
"""(path, method, model): a route that reads its JSON body itself (within the size limit)."""


def build_openapi(app: FastAPI, routes: tuple[ProxyRoute, ...], bodies: tuple[JsonBody, ...] = ()) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    json_models = [r.request_model for r in routes if r.request_model is not None]
    refs = _add_schemas(schemas, [*json_models, *(model for _, _, model in bodies)])
    for path, method, model in bodies:
        doc["paths"][path][method]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[model]}},
        }
    form_properties = _audio_form(schemas)
    for route in routes:
        operation = doc["paths"][route.path][route.method.lower()]
        if route.request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.request_model]}},
            }
        elif route.body == "multipart":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {"$ref": REF_TEMPLATE.format(model="AudioRequestForm")},
                        # A list field is sent as repeated form fields, as OpenAI clients do.
                        "encoding": {"timestamp_granularities[]": {"style": "form", "explode": True}},
                    }
                },
            }
            operation["parameters"] = [
                {"name": name, "in": "query", "required": False, "schema": form_properties[name],
                 "description": "The seed's spelling; the form field of the same name wins."}
                for name in _SEED_AUDIO_QUERY
            ]  # fmt: skip
    return doc


def install_openapi(app: FastAPI, routes: tuple[ProxyRoute, ...], bodies: tuple[JsonBody, ...] = ()) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app, routes, bodies)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
