"""Server-sent events in OpenAI's framing (the response that carries them, releasing the queue slot
and the engine however the stream ends, is `nexa_common.event_stream.EventStream`)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

DONE = "data: [DONE]\n\n"


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def event(payload: BaseModel | dict[str, Any]) -> str:
    data = payload.model_dump(mode="json") if isinstance(payload, BaseModel) else payload
    # A delta carries only what changed, as OpenAI sends it (`{"content": "Hi"}`, not nulls for
    # the role and tool calls); the chunk's own fields (finish_reason, usage) stay, null or not.
    for choice in data.get("choices", []):
        if "delta" in choice:
            choice["delta"] = _without_nulls(choice["delta"])
    return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"
