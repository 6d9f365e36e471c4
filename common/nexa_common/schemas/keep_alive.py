"""A request's `keep_alive`, as Ollama takes it: how long its model stays loaded once idle.

Kept apart from the other model types so that every request schema can use it (this module
imports nothing else of the project).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
MAX_KEEP_ALIVE_S = 365 * 24 * 3600.0


def keep_alive_seconds(value: Any) -> float | None:
    """Ollama's `keep_alive`: seconds as a number, or a duration such as "5m", "1h", "30s"; a
    negative value means "keep it loaded"; 0 means "unload it right after this request". Returns
    seconds, None for forever; raises ValueError for anything else."""
    if value is None or isinstance(value, bool):
        raise ValueError("keep_alive must be a number of seconds or a duration such as '5m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        seconds = float(match.group(1)) * _UNIT_S[match.group(2)]
    else:
        raise ValueError(f"keep_alive {value!r} is not a number of seconds nor a duration such as '5m' or '1h'")
    if seconds < 0:
        return None
    return min(seconds, MAX_KEEP_ALIVE_S)


def _keep_alive(value: Any) -> float | None:
    if value is None:
        raise ValueError("keep_alive may not be null")
    seconds = keep_alive_seconds(value)
    return -1.0 if seconds is None else seconds


KeepAlive = Annotated[
    float,
    BeforeValidator(_keep_alive),
    Field(description="How long the model stays loaded after this request: seconds, or a duration such as "
          "'5m' or '1h'; negative keeps it loaded, 0 unloads it at once (Ollama's `keep_alive`)."),
]  # fmt: skip


def kept(keep_alive: float | None) -> float | Literal[False] | None:
    """A request's `keep_alive` as the pool takes it: False when not given (the model keeps its own),
    None for ever, else seconds."""
    if keep_alive is None:
        return False
    return None if keep_alive < 0 else keep_alive
