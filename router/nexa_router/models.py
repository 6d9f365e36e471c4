"""Which service serves which model: the router asks each service for its list (`/v1/models`), keeps
it for a moment, and answers the model routes from it: `/v1/models`, `/v1/models/{id}`, and the
check that turns away a JSON request naming a model of another kind before it is forwarded."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field

import httpx
from pydantic import ValidationError

from nexa_common.catalogue import lookup
from nexa_common.modalities import Modality, Route
from nexa_common.model_errors import not_found, wrong_route
from nexa_common.schemas.models import ModelCard, ModelList

from .upstreams import Upstream

log = logging.getLogger("nexa.router")

FRESH_S = 5.0
"""How long a service's model list is trusted before it is asked again."""


@dataclass
class ModelDirectory:
    """The services' model lists, cached; one per router app (on `app.state.models`)."""

    timeout_s: float
    _cards: dict[Modality, list[ModelCard]] = field(default_factory=dict)
    _fetched: dict[Modality, float] = field(default_factory=dict)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def cards(self, upstreams: dict[Modality, Upstream], request_id: str, fresh: bool = False) -> list[ModelCard]:
        """Every model of every reachable service (each listed once, in table order)."""
        async with self._lock:
            now = time.monotonic()
            stale = [m for m in upstreams if fresh or now - self._fetched.get(m, -FRESH_S) >= FRESH_S]
            if stale:
                lists = await asyncio.gather(*(self._fetch(upstreams[m], request_id) for m in stale))
                for modality, cards in zip(stale, lists, strict=True):
                    self._cards[modality], self._fetched[modality] = cards, now
        seen: set[str] = set()
        merged = []
        for modality in upstreams:
            for card in self._cards.get(modality, []):
                if card.id not in seen:
                    seen.add(card.id)
                    merged.append(card)
        return merged

    async def _fetch(self, upstream: Upstream, request_id: str) -> list[ModelCard]:
        try:
            response = await upstream.client.get(
                "/v1/models", timeout=self.timeout_s, headers={"x-request-id": request_id}
            )
            response.raise_for_status()
            return ModelList.model_validate_json(response.content).data
        except (httpx.HTTPError, ValidationError) as exc:
            # A service that is down has no models to offer; the others still list theirs.
            log.warning("no model list from the %s service: %s", upstream.modality.value, type(exc).__name__)
            return []

    async def card(self, name: str, upstreams: dict[Modality, Upstream], request_id: str) -> ModelCard:
        cards = await self.cards(upstreams, request_id)
        for card in cards:
            if name == card.id or name in card.aliases:
                return card
        raise not_found(name, (c.id for c in cards))

    async def owner(self, name: str, upstreams: dict[Modality, Upstream], request_id: str) -> Modality | None:
        """The modality of the service that serves `name` (a listed model or a catalogue one), or None."""
        for card in await self.cards(upstreams, request_id):
            if (name == card.id or name in card.aliases) and card.modality is not None:
                return card.modality
        entry = lookup(name)
        return entry.modality if entry is not None else None

    async def check(
        self, body: bytes, route: Route, modality: Modality, upstreams: dict[Modality, Upstream], request_id: str
    ) -> None:
        """400 for a JSON request whose `model` is a model of another kind than the route serves."""
        if route.capability is None or b'"model"' not in body:
            return  # no model named: the service's default answers
        try:
            name = json.loads(body).get("model")
        except (ValueError, AttributeError):
            return  # not a JSON object: the service says what is wrong with it
        if not isinstance(name, str) or not name:
            return
        entry = lookup(name)  # the catalogue first: no service needs asking for its models
        if entry is not None:
            if entry.modality is not modality or route.capability not in entry.capabilities:
                raise wrong_route(entry.name, entry.modality, entry.capabilities, route.path)
            return
        for card in await self.cards(upstreams, request_id):  # a local model one of the services has
            if name == card.id or name in card.aliases:
                wrong = card.modality is not None and card.modality is not modality
                if wrong or (card.capabilities and route.capability not in card.capabilities):
                    raise wrong_route(card.id, card.modality or modality, card.capabilities, route.path)
                return
