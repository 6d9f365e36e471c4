"""Which Messages request fields this server honours, and which it accepts and ignores.

Honoured: model, max_tokens, messages (text, tool_use, tool_result blocks), system, stop_sequences,
stream, temperature, top_p, top_k, tools (client tools), tool_choice (auto, any, tool, none;
disable_parallel_tool_use always holds: at most one call per answer), output_config.format.
Ignored and named in `X-Nexa-Ignored-Fields`: metadata, thinking, service_tier, output_config.effort,
`cache_control` (there is no prompt cache), and unknown fields.
"""

from __future__ import annotations

from typing import Any

from nexa_common.schemas.messages import CountTokensRequest, MessagesRequest

from ..fields import unknown_fields

_ADVISORY = ("metadata", "thinking", "service_tier")


def _has_cache_control(value: Any, depth: int = 0) -> bool:
    if depth > 4:  # blocks nest two levels (tool_result content); deeper is not a block
        return False
    if isinstance(value, dict):
        return "cache_control" in value or any(_has_cache_control(v, depth + 1) for v in value.values())
    if isinstance(value, list):
        return any(_has_cache_control(v, depth + 1) for v in value)
    return False


def ignored(body: MessagesRequest | CountTokensRequest) -> tuple[list[str], list[str]]:
    """(fields accepted and not acted on, fields this API does not define) — the two lists
    `nexa_common.fields.account_names` takes, once it is on main."""
    given = body.model_fields_set
    names = [name for name in _ADVISORY if name in given and getattr(body, name, None) is not None]
    blocks = [m.content for m in body.messages]
    if getattr(body, "cache_control", None) is not None or _has_cache_control([body.system, body.tools, blocks]):
        names.append("cache_control")
    unknown = unknown_fields(body)
    output = getattr(body, "output_config", None)
    if output is not None:
        if output.effort is not None:
            names.append("output_config.effort")
        tool_choice = (getattr(body, "tool_choice", None) or {}).get("type")
        if output.format is not None and body.tools and tool_choice != "none":
            # With tools the answer is a call or free text; the format's grammar is not applied.
            names.append("output_config.format")
        unknown += [f"output_config.{name}" for name in unknown_fields(output)]
    return names, unknown
