"""Text generation wire types: Nexa's requests and responses and OpenAI's, in one set of models.

Nexa's clients send `max_new_tokens` and `stop_words` and read `result`; OpenAI clients send
`max_completion_tokens` (or its older name `max_tokens`) and `stop` and read `choices`. Both are
accepted and both are answered.

Every OpenAI field is honoured, refused with a 400 that names it (a validator below says why), or
declared `Advisory` (accepted, ignored, named in the `X-Nexa-Ignored-Fields` header); unknown
fields are kept and reported the same way (see nexa_common.fields).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..fields import AccountedRequest, Advisory
from .keep_alive import KeepAlive

MAX_STOP_SEQUENCES = 16


class StreamOptions(AccountedRequest):
    include_usage: bool = Field(default=False, description="Send a last chunk carrying `usage`.")
    include_obfuscation: bool | None = Advisory(description="padding against side channels; streams here carry none.")


def _refuse(field: str, why: str) -> ValueError:
    return ValueError(f"'{field}' is not supported by this server: {why}")


class SamplingParams(AccountedRequest):
    """Parameters shared by completions and chat."""

    model: str | None = Field(
        default=None,
        max_length=512,
        description="The model to answer with (see /v1/models); absent: the service's default model.",
    )
    keep_alive: KeepAlive | None = None
    max_completion_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most tokens to generate (OpenAI's current name)."
    )
    max_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most tokens to generate (OpenAI's older name)."
    )
    max_new_tokens: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Most tokens to generate (Nexa's name)."
    )
    min_tokens: int = Field(
        default=0, ge=0, le=1_000_000, description="End-of-text is not sampled before this many tokens (vLLM's name)."
    )
    ignore_eos: bool = Field(
        default=False, description="Never end at the model's end-of-text token: generate the whole token budget."
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
    n: int = Field(default=1, ge=1, description="Choices per request; only 1 is supported.")
    logit_bias: dict[str, float] | None = Field(default=None, description="Not supported: only empty or null.")
    user: str | None = Advisory(description="an end-user ID for abuse monitoring.")

    @field_validator("n")
    @classmethod
    def _one_choice(cls, value: int) -> int:
        if value != 1:
            raise _refuse("n", f"n={value} asks for {value} choices, and one choice per request is generated. "
                          "Send n=1 (or none) and repeat the request for more.")  # fmt: skip
        return value

    @field_validator("logit_bias")
    @classmethod
    def _no_logit_bias(cls, value: dict[str, float] | None) -> dict[str, float] | None:
        if value:
            raise _refuse("logit_bias", "token biases are not applied; send it empty or leave it out.")
        return value

    def token_limit(self) -> int | None:
        """The smallest of the limits given: `max_tokens` is `max_completion_tokens`' older alias
        (clients send both), `max_new_tokens` the seed's."""
        given = [v for v in (self.max_completion_tokens, self.max_tokens, self.max_new_tokens) if v is not None]
        return min(given) if given else None

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
    best_of: int | None = Field(default=None, ge=1, description="Only 1 is supported.")
    suffix: str | None = Field(default=None, description="Not supported: only empty or null.")

    @field_validator("best_of")
    @classmethod
    def _one_candidate(cls, value: int | None) -> int | None:
        if value is not None and value != 1:
            raise _refuse("best_of", "one candidate per request is generated; send best_of=1 or leave it out.")
        return value

    @field_validator("suffix")
    @classmethod
    def _no_suffix(cls, value: str | None) -> str | None:
        if value:
            raise _refuse("suffix", "text insertion (fill-in-the-middle) is not served; leave it out.")
        return value

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
    parallel_tool_calls: bool | None = Field(
        default=None, description="Honoured either way: an answer carries at most one tool call."
    )
    logprobs: bool | None = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    modalities: list[str] | None = Field(default=None, description="Only ['text'].")
    audio: dict[str, Any] | None = Field(default=None, description="Not supported: answers are text only.")
    functions: list[dict[str, Any]] | None = Field(default=None, description="Not supported: send `tools`.")
    function_call: Any = Field(default=None, description="Not supported: send `tool_choice`.")
    web_search_options: dict[str, Any] | None = Field(default=None, description="Not supported: no web search.")
    metadata: dict[str, str] | None = Advisory(description="tags for stored completions; nothing is stored here.")
    store: bool | None = Advisory(description="store the completion for distillation or evals; nothing is stored.")
    service_tier: str | None = Advisory(description="the processing tier; there is one here.")
    prompt_cache_key: str | None = Advisory(description="a cache-routing hint; prefixes are reused anyway.")
    prompt_cache_retention: str | None = Advisory(description="how long a prompt cache is kept.")
    safety_identifier: str | None = Advisory(description="an end-user ID for abuse monitoring.")
    prediction: dict[str, Any] | None = Advisory(description="predicted output, a latency optimisation.")
    reasoning_effort: str | None = Advisory(
        description="reasoning effort of reasoning models; these models do not reason."
    )
    verbosity: str | None = Advisory(description="a verbosity hint of gpt-5 models.")

    @field_validator("modalities")
    @classmethod
    def _text_only(cls, value: list[str] | None) -> list[str] | None:
        if value and any(m != "text" for m in value):
            raise _refuse("modalities", "answers are text only; send ['text'] or leave it out.")
        return value

    @field_validator("audio", "web_search_options")
    @classmethod
    def _not_served(cls, value: dict[str, Any] | None, info: Any) -> dict[str, Any] | None:
        if value is not None:
            why = "audio output is not generated" if info.field_name == "audio" else "there is no web search here"
            raise _refuse(info.field_name, f"{why}; leave it out.")
        return value

    @field_validator("functions", "function_call")
    @classmethod
    def _legacy_functions(cls, value: Any, info: Any) -> Any:
        if value is not None:
            raise _refuse(
                info.field_name, "the deprecated functions API is not served; send `tools` and `tool_choice`."
            )
        return value

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
