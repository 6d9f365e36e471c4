"""The Responses API's wire types (`/v1/responses`, answered by the router's translation layer
`nexa_router.apis.responses`): the request as clients send it, and the response object.

Input items and tools are kept as plain objects here and checked one by one by the translation layer,
so an unsupported item or tool type is answered with its own name and position rather than a
union's list of every alternative that did not match.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..fields import AccountedRequest, Advisory

MAX_TOOLS = 128


class TextFormat(AccountedRequest):
    model_config = ConfigDict(populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = Field(default=None, max_length=64)
    description: str | None = None
    schema_: dict[str, Any] | None = Field(default=None, alias="schema")
    strict: bool | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> TextFormat:
        if self.type == "json_schema" and self.schema_ is None:
            raise ValueError("a format of type 'json_schema' needs a 'schema'")
        return self


class TextConfig(AccountedRequest):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = Advisory(
        description="how long an answer should be; the model is not told."
    )


class ResponsesRequest(AccountedRequest):
    """`POST /v1/responses`. Unknown fields are accepted and named in `X-Nexa-Ignored-Fields` (a 400
    with `NEXA_ROUTER_STRICT_FIELDS`)."""

    model: str | None = Field(default=None, description="The model to answer with; absent: the text service's default.")
    input: str | list[Any] = Field(
        description="A user message as a string, or a list of items: `message` (text content), "
        "`function_call` and `function_call_output`."
    )
    instructions: str | None = Field(default=None, description="A system message; not carried to follow-ups.")
    tools: list[Any] | None = Field(
        default=None,
        max_length=MAX_TOOLS,
        description="Function tools (`type: function`, also grouped in a `namespace`); others are refused.",
    )
    tool_choice: str | dict[str, Any] | None = Field(
        default=None, description="`auto`, `none`, `required`, or `{type: function, name}`."
    )
    parallel_tool_calls: bool | None = Field(
        default=None, description="The model makes at most one call per answer here, so false is always honoured."
    )
    text: TextConfig | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    store: bool = Field(default=True, description="Keep the response, for GET and `previous_response_id`.")
    previous_response_id: str | None = Field(default=None, max_length=64)
    stream: bool = False
    background: bool | None = Field(default=None, description="Not supported: true is refused.")
    conversation: str | dict[str, Any] | None = Field(
        default=None, description="Not supported: use previous_response_id."
    )
    prompt: dict[str, Any] | None = Field(default=None, description="Prompt templates are not supported.")
    truncation: Literal["auto", "disabled"] | None = Field(
        default=None, description="`disabled` (a prompt too long is a 400); `auto` is accepted and ignored."
    )
    include: list[str] | None = Advisory(description="extra output (reasoning, logprobs, sources); there is none here.")
    reasoning: dict[str, Any] | None = Advisory(description="reasoning effort and summaries; no model here reasons.")
    user: str | None = Advisory(description="an end-user ID for abuse monitoring.")
    service_tier: str | None = Advisory(description="the processing tier; there is one here.")
    prompt_cache_key: str | None = Advisory(description="a prompt-cache routing key; there is no prompt cache.")
    safety_identifier: str | None = Advisory(description="an end-user ID for safety monitoring.")
    top_logprobs: int | None = Advisory(description="logprobs are not answered by this API here.", ge=0, le=20)
    max_tool_calls: int | None = Advisory(
        description="an answer holds at most one call here, whatever the limit.", ge=1
    )
    stream_options: dict[str, Any] | None = Advisory(description="obfuscation padding; streams here carry none.")

    @model_validator(mode="after")
    def _metadata_sizes(self) -> ResponsesRequest:
        for key, value in (self.metadata or {}).items():
            if len(key) > 64 or len(value) > 512:
                raise ValueError("metadata keys are at most 64 characters and values at most 512")
        return self


class InputTokensDetails(BaseModel):
    cached_tokens: int = 0


class OutputTokensDetails(BaseModel):
    reasoning_tokens: int = 0


class ResponseUsage(BaseModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails = Field(default_factory=InputTokensDetails)
    output_tokens: int
    output_tokens_details: OutputTokensDetails = Field(default_factory=OutputTokensDetails)
    total_tokens: int


class ResponseObject(BaseModel):
    """A response (`object: response`), as answered, streamed in `response.completed`, and stored."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    status: Literal["completed", "failed", "in_progress", "cancelled", "incomplete"]
    error: dict[str, Any] | None = None
    incomplete_details: dict[str, Any] | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    model: str
    output: list[dict[str, Any]] = Field(description="`message` items with `output_text`, and `function_call` items.")
    parallel_tool_calls: bool = True
    previous_response_id: str | None = None
    reasoning: dict[str, Any] = Field(default_factory=lambda: {"effort": None, "summary": None})
    store: bool = True
    temperature: float = 1.0
    text: dict[str, Any] = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str | dict[str, Any] = "auto"
    tools: list[dict[str, Any]] = Field(default_factory=list)
    top_p: float = 1.0
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class InputItemList(BaseModel):
    object: Literal["list"] = "list"
    data: list[dict[str, Any]]
    first_id: str | None
    last_id: str | None
    has_more: bool


class DeletedResponse(BaseModel):
    id: str
    object: Literal["response.deleted"] = "response.deleted"
    deleted: bool = True
