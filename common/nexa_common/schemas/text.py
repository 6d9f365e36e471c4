"""Text generation wire types: Nexa's requests and responses and OpenAI's, in one set of models.

Nexa's clients send `max_new_tokens` and `stop_words` and read `result`; OpenAI clients send
`max_tokens` and `stop` and read `choices`. Both are accepted and both are answered.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

MAX_STOP_SEQUENCES = 16


class StreamOptions(BaseModel):
    include_usage: bool = Field(default=False, description="Send a last chunk carrying `usage`.")


class SamplingParams(BaseModel):
    """Parameters shared by completions and chat."""

    model_config = ConfigDict(extra="ignore")

    model: str | None = Field(
        default=None, description="Accepted for OpenAI compatibility; the service serves one model."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most tokens to generate (OpenAI name)."
    )
    max_new_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most tokens to generate (Nexa's name)."
    )
    temperature: float = Field(default=1.0, ge=0.0, le=2.0, description="0 is greedy decoding.")
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    top_k: int = Field(default=50, ge=0, le=1000, description="0 disables top-k filtering.")
    min_p: float = Field(default=0.0, ge=0.0, le=1.0)
    presence_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    frequency_penalty: float = Field(default=0.0, ge=-2.0, le=2.0)
    repeat_penalty: float = Field(default=1.0, gt=0.0, le=10.0)
    stop: str | list[Annotated[str, Field(min_length=1, max_length=256)]] | None = Field(
        default=None, description="Sequences that end generation (OpenAI name)."
    )
    stop_words: list[Annotated[str, Field(min_length=0, max_length=256)]] | None = Field(
        default=None, description="Sequences that end generation (Nexa's name)."
    )
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1, description="Same seed, same request → same output.")
    stream: bool = Field(default=False, description="Answer as server-sent events.")
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="Only one choice per request is supported.")
    user: str | None = None

    def token_limit(self) -> int | None:
        return self.max_tokens if self.max_tokens is not None else self.max_new_tokens

    def stop_sequences(self) -> list[str]:
        stops: list[str] = []
        if isinstance(self.stop, str):
            stops.append(self.stop)
        elif self.stop:
            stops.extend(self.stop)
        stops.extend(s for s in self.stop_words or [] if s)
        return list(dict.fromkeys(stops))

    @model_validator(mode="after")
    def _bounded_stops(self) -> SamplingParams:
        if len(self.stop_sequences()) > MAX_STOP_SEQUENCES:
            raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences are allowed")
        return self


# --- /v1/completions -------------------------------------------------------------------------


class CompletionRequest(SamplingParams):
    prompt: str | list[str] = Field(description="The text to continue. A list must hold exactly one prompt.")
    echo: bool = Field(default=False, description="Return the prompt before the completion.")
    logprobs: int | None = Field(
        default=None, ge=0, le=20, description="Return this many most likely tokens per position."
    )

    def prompt_text(self) -> str:
        if isinstance(self.prompt, str):
            return self.prompt
        if len(self.prompt) != 1:
            raise ValueError("'prompt' as a list must hold exactly one string")
        return self.prompt[0]

    @model_validator(mode="after")
    def _single_prompt(self) -> CompletionRequest:
        self.prompt_text()
        return self


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


FinishReason = Literal["stop", "length", "tool_calls"]


class CompletionLogprobs(BaseModel):
    tokens: list[str]
    token_logprobs: list[float | None]
    top_logprobs: list[dict[str, float] | None]
    text_offset: list[int]


class CompletionChoice(BaseModel):
    index: int = 0
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason | None = None


class CompletionResponse(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage
    result: str = Field(description="The generated text (Nexa's field).")


class CompletionChunk(BaseModel):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None


# --- /v1/chat/completions and /v1/function-calling -------------------------------------------


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class FunctionCall(BaseModel):
    name: str
    arguments: str = Field(description="The arguments as a JSON string.")


class ToolCall(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[TextPart] | None = None
    name: str | None = Field(default=None, max_length=256)
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionDefinition(BaseModel):
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str | None = None
    parameters: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}},
        description="JSON schema of the arguments.",
    )
    strict: bool | None = None


class Tool(BaseModel):
    type: Literal["function"] = "function"
    function: FunctionDefinition


class NamedFunction(BaseModel):
    name: str


class NamedToolChoice(BaseModel):
    type: Literal["function"] = "function"
    function: NamedFunction


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class JsonSchemaFormat(BaseModel):
    name: str = "response"
    description: str | None = None
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None

    model_config = ConfigDict(populate_by_name=True)


class ResponseFormat(BaseModel):
    type: Literal["text", "json_object", "json_schema"] = "text"
    json_schema: JsonSchemaFormat | None = None

    @model_validator(mode="after")
    def _schema_given(self) -> ResponseFormat:
        if self.type == "json_schema" and self.json_schema is None:
            raise ValueError("response_format of type 'json_schema' needs a 'json_schema' object")
        return self


class ChatCompletionRequest(SamplingParams):
    messages: list[ChatMessage] = Field(min_length=1, description="The whole conversation, oldest first.")
    response_format: ResponseFormat | None = None
    tools: list[Tool] | None = Field(default=None, max_length=128)
    tool_choice: ToolChoice | None = Field(default=None, description="Default: 'auto' when tools are given.")
    parallel_tool_calls: bool | None = None
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)

    @model_validator(mode="after")
    def _tool_choice_names_a_tool(self) -> ChatCompletionRequest:
        if isinstance(self.tool_choice, NamedToolChoice):
            names = {t.function.name for t in self.tools or []}
            if self.tool_choice.function.name not in names:
                raise ValueError(f"tool_choice names '{self.tool_choice.function.name}', which is not among the tools")
        elif self.tool_choice == "required" and not self.tools:
            raise ValueError("tool_choice 'required' needs at least one tool")
        return self


class FunctionCallingRequest(ChatCompletionRequest):
    """Nexa's /v1/function-calling request: a chat request that must carry tools."""

    tools: list[Tool] = Field(min_length=1, max_length=128)  # type: ignore[assignment]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCall] | None = None
    function_call: FunctionCall | None = Field(default=None, description="Nexa's (and OpenAI's legacy) field.")


class ChatChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: FinishReason | None
    logprobs: dict[str, Any] | None = None


class ChatCompletionResponse(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[ChatChoice]
    usage: Usage


class FunctionCallDelta(BaseModel):
    name: str | None = None
    arguments: str | None = None


class ToolCallDelta(BaseModel):
    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: FunctionCallDelta


class ChatDelta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[ToolCallDelta] | None = None


class ChatChunkChoice(BaseModel):
    index: int = 0
    delta: ChatDelta
    finish_reason: FinishReason | None = None
    logprobs: dict[str, Any] | None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatChunkChoice]
    usage: Usage | None = None
