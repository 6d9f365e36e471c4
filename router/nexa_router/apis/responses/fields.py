"""Which Responses request fields this server honours, refuses, or accepts and ignores.

Honoured: model, input, instructions, tools (function), tool_choice, parallel_tool_calls (the model
makes at most one call per answer, so false always holds), text.format, max_output_tokens,
temperature, top_p, metadata, store, previous_response_id, stream, truncation "disabled".
Refused with a 400: background, conversation and prompt (features this server does not have).
Ignored and named in `X-Nexa-Ignored-Fields`: the rest, when given.
"""

from __future__ import annotations

from nexa_common.errors import APIError
from nexa_common.schemas.responses import ResponsesRequest

from ..fields import unknown_fields
from .conversation import tools_active

# Accepted for compatibility; nothing here acts on them (no reasoning models, no service tiers,
# no prompt cache, no logprobs in this API yet).
_ADVISORY = (
    "include",
    "reasoning",
    "user",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
    "top_logprobs",
    "max_tool_calls",
    "stream_options",
)


def refuse_unsupported(body: ResponsesRequest) -> None:
    if body.background:
        raise APIError(
            400,
            "background responses are not supported: send the request with stream true to follow it, "
            "and POST /v1/responses/{id}/cancel to stop it.",
            param="background",
            code="unsupported_parameter",
        )
    if body.conversation is not None:
        raise APIError(
            400,
            "conversation objects are not supported: continue a stored response with previous_response_id.",
            param="conversation",
            code="unsupported_parameter",
        )
    if body.prompt is not None:
        raise APIError(400, "prompt templates are not supported.", param="prompt", code="unsupported_parameter")


def ignored(body: ResponsesRequest) -> tuple[list[str], list[str]]:
    """(fields accepted and not acted on, fields this API does not define) — the two lists
    `nexa_common.fields.account_names` takes, once it is on main."""
    given = body.model_fields_set
    names = [name for name in _ADVISORY if name in given and getattr(body, name) not in (None, [], {})]
    if body.truncation == "auto":
        # Nothing is dropped to make a conversation fit: one too long answers 400 as with "disabled".
        names.append("truncation")
    unknown = unknown_fields(body)
    if body.text is not None:
        if body.text.verbosity is not None:
            names.append("text.verbosity")
        unknown += [f"text.{name}" for name in unknown_fields(body.text)]
        if body.text.format is not None and body.text.format.type != "text" and tools_active(body):
            # With tools the answer is a call or free text; the format's grammar is not applied.
            names.append("text.format")
    return names, unknown
