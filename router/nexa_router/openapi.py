"""The OpenAPI document: the proxy handlers take raw bytes, so their request bodies are added here
from the shared wire types (the same pydantic models the services validate with)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from nexa_common.modalities import FormSpec, all_routes

REF_TEMPLATE = "#/components/schemas/{model}"


def _form_schema(schemas: dict[str, Any], form: FormSpec) -> dict[str, Any]:
    """A multipart form as a component schema (its file parts and its text fields); returns the fields."""
    model = form.model.model_json_schema(ref_template=REF_TEMPLATE, mode="validation")
    for name, schema in model.pop("$defs", {}).items():
        schemas.setdefault(name, schema)
    files = {name: {"type": "string", "format": "binary", "description": text} for name, text in form.files.items()}
    name = form.name or f"{form.model.__name__}Form"
    schemas[name] = {
        "title": name,
        "type": "object",
        "properties": {**files, **model["properties"]},
        "required": [*form.files, *model.get("required", [])],
    }
    properties: dict[str, Any] = model["properties"]
    return properties


def _form_body(schemas: dict[str, Any], form: FormSpec) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The request body of a multipart route, and its query parameters (fields that Nexa's original
    routes took in the query string)."""
    fields = _form_schema(schemas, form)
    # A list field is sent as repeated form fields, as OpenAI clients do.
    encoding = {name: {"style": "form", "explode": True} for name, schema in fields.items() if _is_list(schema)}
    body = {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {"$ref": REF_TEMPLATE.format(model=form.name or f"{form.model.__name__}Form")},
                **({"encoding": encoding} if encoding else {}),
            }
        },
    }
    parameters = [
        {"name": name, "in": "query", "required": False, "schema": fields[name],
         "description": "The spelling of Nexa's original route; the form field of the same name wins."}
        for name in form.query
    ]  # fmt: skip
    return body, parameters


def _is_list(schema: dict[str, Any]) -> bool:
    options = schema.get("anyOf", [schema])
    return any(option.get("type") == "array" for option in options)


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


def build_openapi(app: FastAPI) -> dict[str, Any]:
    doc = get_openapi(
        title=app.title, version=app.version, description=app.description, routes=app.routes, tags=app.openapi_tags
    )
    schemas: dict[str, Any] = doc.setdefault("components", {}).setdefault("schemas", {})
    routes = [route for _, route in all_routes()]
    refs = _add_schemas(schemas, [r.request_model for r in routes if r.request_model is not None])
    for route in routes:
        operation = doc["paths"][route.path][route.method.lower()]
        if route.request_model is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[route.request_model]}},
            }
        elif route.form is not None:
            operation["requestBody"], operation["parameters"] = _form_body(schemas, route.form)
    return doc


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
