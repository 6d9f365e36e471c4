"""Which Messages request fields this server honours, and which it accepts and ignores.

Honoured: model, max_tokens, messages (text, tool_use, tool_result blocks), system, stop_sequences,
stream, temperature, top_p, top_k, tools (client tools), tool_choice (auto, any, tool, none;
disable_parallel_tool_use always holds: at most one call per answer), output_config.format.
Accepted, ignored and named in `X-Nexa-Ignored-Fields`: the fields the schema declares `Advisory`
(metadata, thinking, service_tier, output_config.effort), `cache_control` wherever it is (there is no
prompt cache), output_config.format beside tools, and unknown fields (a 400 with
`NEXA_ROUTER_STRICT_FIELDS`).
"""

from __future__ import annotations

from typing import Any

from nexa_common.schemas.messages import CountTokensRequest, MessagesRequest


def _has_cache_control(value: Any, depth: int = 0) -> bool:
    if depth > 4:  # blocks nest two levels (tool_result content); deeper is not a block
        return False
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(v, depth + 1) for v in value)
    return False


def ignored_by_value(body: MessagesRequest | CountTokensRequest) -> list[str]:
    """Fields ignored for the value they have in this request."""
    names = []
    blocks = [m.content for m in body.messages]
    if getattr(body, "cache_control", None) is not None or _has_cache_control([body.system, body.tools, blocks]):
        names.append("cache_control")
    output = getattr(body, "output_config", None)
    tool_choice = (body.tool_choice or {}).get("type")
    if output is not None and output.format is not None and body.tools and tool_choice != "none":
        # With tools the answer is a call or free text; the format's grammar is not applied.
        names.append("output_config.format")
    return names
