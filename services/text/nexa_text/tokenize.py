"""`POST /v1/tokenize`: how many tokens a chat request's prompt is, rendered as chat renders it (the
model's template over the messages, with the instructions describing the tools). The router's
`/v1/messages/count_tokens` asks it; nothing is generated and no queue slot is taken."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter

from nexa_common.errors import APIError, error_responses
from nexa_common.schemas.text import TOKENIZE_PATH, ChatCompletionRequest, TokenizeResponse

from .prompting import PromptError, chat_prompt_tokens, tool_instructions
from .runtime import Runtime
from .serving import StateDep, served
from .tool_calls import plan_tools

router = APIRouter(tags=["text"])


def _count(runtime: Runtime, body: ChatCompletionRequest) -> int:
    plan = plan_tools(body, must_call=False)
    extra = tool_instructions(plan.tools, plan.allow_text) if plan is not None else None
    try:
        return len(chat_prompt_tokens(runtime.engine, runtime.renderer, body.messages, extra))
    except PromptError as exc:
        raise APIError(
            400,
            f"The model's chat template rejected the conversation: {exc}",
            param="messages",
            code="invalid_messages",
        ) from exc


@router.post(TOKENIZE_PATH, response_model=TokenizeResponse, responses=error_responses(400, 503))
async def tokenize(body: ChatCompletionRequest, state: StateDep) -> TokenizeResponse:
    """Count the prompt tokens of `messages` (and `tools`, `tool_choice`), as chat would send them to
    the model. A `response_format` is not counted: its instruction is added only by chat."""
    model = served(state, body)
    count = await asyncio.to_thread(_count, model.runtime, body)
    return TokenizeResponse(model=model.model.name, prompt_tokens=count)
