"""Field accounting: every request field is honoured, refused with a 400 that names it, or accepted,
ignored and named in the `X-Nexa-Ignored-Fields` response header (contract 6 of the wave plan).

A client cannot otherwise tell a supported parameter from one the server drops. So request models
keep unknown fields (`extra="allow"`) instead of discarding them, OpenAI fields that OpenAI itself
documents as advisory are declared with `Advisory(...)`, and a route calls `account_fields` once
with its parsed body:

    account_fields(request, body, strict=settings.strict_fields)

That reports the advisory fields the request set and every unknown field in the header (the
middleware installed by `install_common` writes it), or, with `NEXA_<SERVICE>_STRICT_FIELDS=true`,
answers unknown fields with a 400 naming them. Routes whose fields are not a pydantic model (the
multipart audio form) call `account_names` with the names they did not honour.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import APIError

IGNORED_FIELDS_HEADER = "X-Nexa-Ignored-Fields"
_STATE_KEY = "nexa_ignored_fields"
_ADVISORY = "x-nexa-advisory"
"""Marks a field in the model's JSON schema (so the OpenAPI document shows it too)."""


def Advisory(default: Any = None, *, description: str, **kwargs: Any) -> Any:
    """A field OpenAI documents as advisory (a hint the server may disregard): accepted, not
    honoured, and named in the ignored-fields header whenever a request sets it."""
    return Field(
        default,
        description=f"Accepted and ignored (advisory): {description}",
        json_schema_extra={_ADVISORY: True},
        **kwargs,
    )


class AccountedRequest(BaseModel):
    """Base of every request body: unknown fields are kept so they can be reported, never dropped."""

    model_config = ConfigDict(extra="allow")

    @classmethod
    def advisory_fields(cls) -> frozenset[str]:
        """The names of the fields declared with `Advisory`."""
        return frozenset(
            info.alias or name
            for name, info in cls.model_fields.items()
            if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get(_ADVISORY)
        )

    def unknown_fields(self) -> list[str]:
        """Fields the request sent that this server does not know (`stream_options.x` for nested ones)."""
        return list(self.model_extra or {}) + self._nested(lambda sub: sub.unknown_fields())

    def ignored_fields(self) -> list[str]:
        """Advisory fields the request set, then unknown fields, in the order declared or sent."""
        advisory = self.advisory_fields()
        named = [
            info.alias or name
            for name, info in type(self).model_fields.items()
            if (info.alias or name) in advisory and name in self.model_fields_set
        ]
        nested = self._nested(lambda sub: [n for n in sub.ignored_fields() if n not in sub.unknown_fields()])
        return named + nested + self.unknown_fields()

    def _nested(self, names: Any) -> list[str]:
        # Sub-objects that are accounted requests themselves (stream_options, ...), prefixed with their field.
        found: list[str] = []
        for name in self.model_fields_set:
            value = getattr(self, name, None)
            if isinstance(value, AccountedRequest):
                found.extend(f"{name}.{inner}" for inner in names(value))
        return found


def account_names(request: Request, ignored: Iterable[str], *, unknown: Iterable[str] = (), strict: bool) -> None:
    """Record fields the route accepted without honouring them (`ignored`, advisory ones) and fields
    it does not know (`unknown`): both go into the header; in strict mode unknown ones are a 400."""
    unknown = list(unknown)
    if strict and unknown:
        quoted = ", ".join(f"'{name}'" for name in unknown)
        raise APIError(
            400,
            f"Unknown field{'s' if len(unknown) > 1 else ''} {quoted}: this server does not support "
            f"{'them' if len(unknown) > 1 else 'it'}, and strict field checking is on (STRICT_FIELDS).",
            param=unknown[0],
            code="unknown_field",
        )
    names = list(dict.fromkeys([*ignored, *unknown]))
    if names:
        request.scope.setdefault("state", {}).setdefault(_STATE_KEY, []).extend(names)


def account_fields(request: Request, body: AccountedRequest, *, strict: bool) -> None:
    """The one call a route makes with its parsed body (see the module docstring)."""
    unknown = body.unknown_fields()
    account_names(request, [n for n in body.ignored_fields() if n not in unknown], unknown=unknown, strict=strict)


def _header_value(names: list[str]) -> bytes:
    # Field names are client-chosen: keep the header one line of printable ASCII.
    cleaned = ("".join(c for c in name if c.isascii() and c.isprintable() and c != ",")[:64] for name in names)
    return ",".join(dict.fromkeys(n for n in cleaned if n)).encode("ascii")


class IgnoredFieldsMiddleware:
    """Writes the names `account_names` recorded into the response's `X-Nexa-Ignored-Fields` header.

    Pure ASGI (no body buffering), so streamed answers carry the header too: the route has
    accounted its fields before the response starts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = scope.get("state", {}).get(_STATE_KEY)
                if names:
                    value = _header_value(names)
                    if value:
                        message = {
                            **message,
                            "headers": [*message.get("headers", []), (b"x-nexa-ignored-fields", value)],
                        }
            await send(message)

        await self.app(scope, receive, send_with_header)
