"""The errors a request's `model` can get, worded once for the services and the router (contract:
unknown → 404 `model_not_found` listing what is served; a model of another kind on a route → 400
`model_wrong_route` naming the route that serves it; not downloaded yet → 404 `model_not_pulled`
saying `nexa pull NAME`)."""

from __future__ import annotations

import re
from collections.abc import Iterable

from .catalogue import CatalogueEntry, HubSource
from .errors import APIError
from .modalities import Capability, Modality, route_for

# Which capability a "use this route instead" message names, when a model has several.
_PRIMARY = (
    Capability.CHAT, Capability.TRANSCRIPTION, Capability.IMAGE_GENERATION, Capability.EMBEDDINGS,
    Capability.SPEECH, Capability.COMPLETIONS, Capability.TRANSLATION, Capability.IMAGE_EDIT,
)  # fmt: skip
_NOUNS = {Capability.IMAGE_GENERATION: "image generation", Capability.IMAGE_EDIT: "image editing",
          Capability.COMPLETIONS: "completion", Capability.JSON_SCHEMA: "JSON",
          Capability.EMBEDDINGS: "embedding"}  # fmt: skip
_MAX_NAME = 200
_PLAIN_NAME = re.compile(r"^[\w.:+@-]{1,200}$")


def _named(name: str) -> str:
    """The name as the message quotes it: model names only, never what looks like a path or worse
    (the answer must not echo a filesystem path back)."""
    return f"Model '{name}'" if _PLAIN_NAME.match(name) else "The model named in the request"


def not_found(name: str, served: Iterable[str], where: str = "this server", hint: str | None = None) -> APIError:
    names = ", ".join(sorted(served)) or "none"
    more = f"; {hint}" if hint else ""
    return APIError(
        404,
        f"{_named(name)} is not served here{more}. {where[0].upper()}{where[1:]} serves: {names} "
        f"(GET /v1/models lists every model of this server).",
        param="model",
        code="model_not_found",
    )


def wrong_route(name: str, modality: Modality, capabilities: Iterable[Capability], path: str | None = None) -> APIError:
    """400 for a model asked for on a route it cannot serve, naming the route that serves it."""
    owned = set(capabilities)
    capability = next((c for c in _PRIMARY if c in owned), next(iter(owned), None))
    route = route_for(capability) if capability is not None else None
    kind = f"{modality.value} {_NOUNS.get(capability, capability.value)}" if capability else modality.value
    article = "an" if kind[0] in "aeiou" else "a"
    where = f"; use {route.path}" if route is not None and route.path != path else ""
    return APIError(
        400,
        f"'{name[:_MAX_NAME]}' is {article} {kind} model{where}.",
        param="model",
        code="model_wrong_route",
    )


def entry_wrong_route(entry: CatalogueEntry, path: str | None = None) -> APIError:
    return wrong_route(entry.name, entry.modality, entry.capabilities, path)


def not_pulled(entry: CatalogueEntry, reason: str) -> APIError:
    how = f"run `nexa pull {entry.name}`"
    if isinstance(entry.source, HubSource):
        how += f" where {entry.source.describe()} is reachable"
    return APIError(
        404,
        f"Model '{entry.name}' is not on this server yet: {how}, and it is servable without a restart. ({reason})",
        param="model",
        code="model_not_pulled",
    )
