"""Which Responses request fields this server honours, refuses, or accepts and ignores.

Honoured: model, input, instructions, tools (function), tool_choice, parallel_tool_calls (the model
makes at most one call per answer, so false always holds), text.format, max_output_tokens,
temperature, top_p, metadata, store, previous_response_id, stream, truncation "disabled".
Refused with a 400: background, conversation and prompt (features this server does not have).
Accepted, ignored and named in `X-Nexa-Ignored-Fields`: the fields the schema declares `Advisory`,
those below that depend on the request, and unknown fields (a 400 with `NEXA_ROUTER_STRICT_FIELDS`).
"""

from __future__ import annotations

from nexa_common.errors import APIError
from nexa_common.schemas.responses import ResponsesRequest

from .conversation import tools_active


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


def ignored_by_value(body: ResponsesRequest) -> list[str]:
    """Fields ignored for the value they have in this request."""
    names = []
    if body.truncation == "auto":
        # Nothing is dropped to make a conversation fit: one too long answers 400 as with "disabled".
        names.append("truncation")
    if (
        body.text is not None
        and body.text.format is not None
        and body.text.format.type != "text"
        and tools_active(body)
    ):
        # With tools the answer is a call or free text; the format's grammar is not applied.
        names.append("text.format")
    return names
