"""HTTP details every component answers the same way, whatever its routes: HEAD on each GET route,
and a clear refusal of protocol upgrades (WebSocket) the server does not speak.

FastAPI routes declare GET only, so HEAD (load balancers, uptime checks, `curl -I`) got a 405;
Starlette answers a WebSocket handshake on a path with no WebSocket route with a bare 403 and no
body. Both are ASGI middlewares, so every route, present and future, is covered.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import error_body

UPGRADE_REFUSED_STATUS = 400
_UPGRADE_MESSAGE = (
    "This server answers plain HTTP only: WebSocket upgrades are refused (there is no WebSocket or Realtime "
    "API here). Send the request without the 'Upgrade' header."
)


class HeadAsGetMiddleware:
    """HEAD is answered as GET would be (status and headers, Content-Length included), without the body."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_headers_only(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return  # the server sends no body for HEAD; the last (empty) message ends the response
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        # A copy: the server keeps its own scope, which still says HEAD.
        await self.app({**scope, "method": "GET"}, receive, send_headers_only)


class RefuseUpgradesMiddleware:
    """Answers a WebSocket handshake with a 400 and the OpenAI error body, instead of a bare 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        message = await receive()
        if message["type"] != "websocket.connect":
            return  # the client went away before the handshake
        if "websocket.http.response" not in scope.get("extensions", {}):
            # A server without the denial-response extension can only close (it answers 403 then).
            await send({"type": "websocket.close", "code": 1008, "reason": "WebSocket is not supported"})
            return
        body = json.dumps(error_body(UPGRADE_REFUSED_STATUS, _UPGRADE_MESSAGE, code="upgrade_not_supported")).encode()
        await send(
            {
                "type": "websocket.http.response.start",
                "status": UPGRADE_REFUSED_STATUS,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
