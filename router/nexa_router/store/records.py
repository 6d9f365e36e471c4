"""What the store keeps for one response (plain data: the routes never see a database row)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredResponse:
    id: str
    created_at: int
    """Unix seconds, as in the response object."""
    expires_at_ms: int
    """Unix milliseconds after which the response is gone (never served, purged later)."""
    previous_response_id: str | None
    response: dict[str, Any]
    """The response object as it was answered (status, output, usage, ...)."""
    input_items: list[dict[str, Any]]
    """The request's own input items, as `GET /v1/responses/{id}/input_items` lists them."""
    context: list[dict[str, Any]]
    """The items of the conversation before this request (what `previous_response_id` continued)."""

    def conversation(self) -> list[dict[str, Any]]:
        """Everything a request continuing this response starts from: context, input, then output."""
        return [*self.context, *self.input_items, *self.response.get("output", [])]
