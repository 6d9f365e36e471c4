"""Embedding wire types: OpenAI's `/v1/embeddings` request and answer.

`input` takes the four forms OpenAI takes: a string, a list of strings, a list of token ids, or a
list of token-id lists. Token ids are the embedding model's own vocabulary, without its special
tokens (the service adds them, as it does for text), so the ids of a text embed exactly as the text.
Every field is honoured but `user` (advisory) and unknown ones: both are named in the
`X-Nexa-Ignored-Fields` header (`nexa_common.fields`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr, field_validator

from ..fields import AccountedRequest, Advisory
from .keep_alive import KeepAlive

# Strict types: `[1, 2]` must stay token ids and `["1"]` text; lax parsing would turn one into the other.
TokenIds = list[StrictInt]
EmbeddingInput = StrictStr | list[StrictStr] | list[list[StrictInt]] | TokenIds


class EmbeddingRequest(AccountedRequest):
    input: EmbeddingInput = Field(
        description="A string, a list of strings, a list of token ids or a list of token-id lists to embed."
    )
    model: str | None = Field(
        default=None,
        description="An embedding model (`/v1/models`); absent: the first embedding model the service was started with.",
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="`base64`: each vector as little-endian float32 bytes, base64-encoded."
    )
    dimensions: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="Shorten the vectors to this size; only for models trained for it."
    )
    keep_alive: KeepAlive | None = None
    user: str | None = Advisory(description="an end-user ID for abuse monitoring.")

    @field_validator("input", mode="before")
    @classmethod
    def _one_of_four_shapes(cls, value: object) -> object:
        # One clear message instead of one failure per member of the union.
        if isinstance(value, str):
            return value
        if isinstance(value, list) and (
            all(isinstance(v, str) for v in value)
            or all(_token_id(v) for v in value)
            or all(isinstance(v, list) and all(_token_id(t) for t in v) for v in value)
        ):
            return value
        raise ValueError(
            "'input' must be a string, a list of strings, a list of token ids (integers) or a list of token-id lists"
        )


def _token_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class Embedding(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str = Field(description="The vector, or its base64 float32 bytes.")


class EmbeddingUsage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage
