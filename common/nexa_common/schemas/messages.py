"""Anthropic's Messages API's wire types (`/v1/messages`, answered by the router's translation layer
`nexa_router.apis.messages`). Content blocks and tools are plain objects here and checked one by one
by the translation layer, so an unsupported block or tool is answered with its own name and place."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..fields import AccountedRequest, Advisory

MAX_TOOLS = 128
MAX_STOP_SEQUENCES = 16


class OutputFormat(AccountedRequest):
    type: Literal["json_schema"]
    schema_: dict[str, Any] = Field(alias="schema")


class OutputConfig(AccountedRequest):
    format: OutputFormat | None = Field(default=None, description="Structured output: grammar-constrained JSON.")
    effort: str | None = Advisory(description="how much effort to spend; no model here reasons.")


class InputMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant", "system"]
    """`system` turns (text only) may come between the others, as Anthropic's API allows."""
    content: str | list[Any]


class MessagesRequest(AccountedRequest):
    """`POST /v1/messages`. Unknown fields are accepted and named in `X-Nexa-Ignored-Fields` (a 400
    with `NEXA_ROUTER_STRICT_FIELDS`)."""

    model: str = Field(min_length=1, description="The model to answer with (a name from /v1/models).")
    max_tokens: int = Field(ge=1, le=1_000_000, description="Most tokens to generate (required, as Anthropic's API).")
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None, max_length=MAX_STOP_SEQUENCES
    )
    stream: bool = False
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    top_k: int | None = Field(default=None, ge=0, le=1000)
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: dict[str, Any] | None = None
    output_config: OutputConfig | None = None
    metadata: dict[str, Any] | None = Advisory(description="an end-user ID for abuse monitoring.")
    thinking: dict[str, Any] | None = Advisory(description="extended thinking; no model here thinks.")
    service_tier: str | None = Advisory(description="the processing tier; there is one here.")
    cache_control: dict[str, Any] | None = Field(
        default=None, description="Accepted and ignored (there is no prompt cache), here and on blocks."
    )


class CountTokensRequest(AccountedRequest):
    """`POST /v1/messages/count_tokens`: the request's prompt side (no max_tokens)."""

    model: str = Field(min_length=1)
    messages: list[InputMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_TOOLS)
    tool_choice: dict[str, Any] | None = None
    thinking: dict[str, Any] | None = Advisory(description="extended thinking; no model here thinks.")


class MessageUsage(BaseModel):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class MessageObject(BaseModel):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[dict[str, Any]] = Field(description="`text` and `tool_use` blocks.")
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"] | None
    stop_sequence: str | None = None
    usage: MessageUsage


class TokenCount(BaseModel):
    input_tokens: int


class AnthropicErrorDetail(BaseModel):
    type: str
    message: str


class AnthropicError(BaseModel):
    """Every error on the Messages routes."""

    type: Literal["error"] = "error"
    error: AnthropicErrorDetail
