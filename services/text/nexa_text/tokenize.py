"""`POST /v1/tokenize`: how many tokens a chat request's prompt is, rendered as chat renders it (the
model's template over the messages, with the instructions describing the tools). The router's
`/v1/messages/count_tokens` asks it; nothing is generated and no queue slot is taken."""

from __future__ import annotations

from contextlib import AsyncExitStack

from fastapi import APIRouter, Request

from nexa_common.errors import error_responses
from nexa_common.kit.cancellation import while_connected
from nexa_common.modalities import Capability
from nexa_common.schemas.keep_alive import kept
from nexa_common.schemas.text import TOKENIZE_PATH, ChatCompletionRequest, TokenizeResponse

from .prompting import tool_instructions
from .runtime import Runtime
from .serving import StateDep, chat_tokens, prepared_off_loop
from .tool_calls import plan_tools

router = APIRouter(tags=["text"])


def _count(runtime: Runtime, body: ChatCompletionRequest) -> int:
    plan = plan_tools(body, must_call=False)
    extra = tool_instructions(plan.tools, plan.allow_text) if plan is not None else None
    return len(chat_tokens(runtime, body.messages, extra))


@router.post(TOKENIZE_PATH, response_model=TokenizeResponse, responses=error_responses(400, 404, 503, 507))
async def tokenize(body: ChatCompletionRequest, request: Request, state: StateDep) -> TokenizeResponse:
    """Count the prompt tokens of `messages` (and `tools`, `tool_choice`), as chat would send them to
    the model. A `response_format` is not counted: its instruction is added only by chat. The model
    is loaded if it is not (counting needs its tokenizer and template), like any chat request."""
    model = state.pool.get(body.model, Capability.CHAT)
    async with AsyncExitStack() as stack:
        held = stack.enter_async_context(state.pool.use(model, kept(body.keep_alive)))
        runtime = await while_connected(request, held)
        assert isinstance(runtime, Runtime)
        count = await prepared_off_loop(request, _count, runtime, body)
    return TokenizeResponse(model=model.name, prompt_tokens=count)
