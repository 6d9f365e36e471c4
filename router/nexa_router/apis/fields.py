"""Request fields a route accepted but did not act on are named in the `X-Nexa-Ignored-Fields`
answer header (the project's convention, PLAN contract 6), never dropped silently."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote

from pydantic import BaseModel

IGNORED_FIELDS_HEADER = "X-Nexa-Ignored-Fields"
_MAX_LISTED = 32


def unknown_fields(body: BaseModel) -> list[str]:
    """Fields the API does not define (kept by `extra="allow"` so they can be named)."""
    return sorted(body.model_extra or {})


def ignored_header(accounted: tuple[Iterable[str], Iterable[str]]) -> dict[str, str]:
    """The header naming the (ignored, unknown) fields. A field name is the client's own text: anything beyond plain
    ASCII letters, digits and `_.-[]` is percent-encoded, so no name can break the header (a control
    character would end the connection) or be mistaken for two; past 32 names the rest are counted."""
    ignored, unknown = accounted
    listed = [quote(name, safe="_.-[]") for name in dict.fromkeys([*ignored, *unknown])]
    if len(listed) > _MAX_LISTED:
        listed = [*listed[:_MAX_LISTED], f"+{len(listed) - _MAX_LISTED} more"]
    return {IGNORED_FIELDS_HEADER: ",".join(listed)} if listed else {}
