"""An upstream that answers at once, so what the router adds can be measured alone.

Raw ASGI (no framework) so its own cost is as small as possible; it answers the routes the router
checks (/ready, /v1/models) and a fixed chat completion.
"""

from __future__ import annotations

import argparse
import json

import uvicorn

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "instant",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }
).encode()
READY = b'{"status":"ready","model":"instant"}'
MODELS = b'{"object":"list","data":[{"id":"instant","object":"model","created":0,"owned_by":"nexa"}]}'


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    more = True
    while more:  # drain the request body
        message = await receive()
        more = message.get("more_body", False)
    body = {"/ready": READY, "/health": b'{"status":"ok"}', "/v1/models": MODELS}.get(scope["path"], COMPLETION)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)
