"""Request fields a route accepted but did not act on are named in the `X-Nexa-Ignored-Fields`
answer header (the project's convention, PLAN contract 6), never dropped silently."""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel

IGNORED_FIELDS_HEADER = "X-Nexa-Ignored-Fields"


def unknown_fields(body: BaseModel) -> list[str]:
    """Fields the API does not define (kept by `extra="allow"` so they can be named)."""
    return sorted(body.model_extra or {})


def ignored_header(names: Iterable[str]) -> dict[str, str]:
    listed = ",".join(dict.fromkeys(names))
    return {IGNORED_FIELDS_HEADER: listed} if listed else {}
