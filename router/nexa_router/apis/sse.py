"""Server-sent events with named events, as the Responses and Messages APIs send them
(`event: <type>` then `data: <json>`); `nexa_common.event_stream.EventStream` carries them."""

from __future__ import annotations

import json
from typing import Any


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()
