"""A reverse proxy like an ingress: serves the API under a path prefix on its own port, and tells the
router what the client used in `X-Forwarded-Proto`, `-Host` and `-Prefix` (as nginx or Traefik do).

Run as its own process by the conformance tests: `python conformance_proxy.py PORT UPSTREAM PREFIX`.
It answers `/ready` itself, so the Supervisor can wait for it.
"""

from __future__ import annotations

import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length"}


def make_app(upstream: str, prefix: str) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=300)

    async def ready(_: Request) -> Response:
        return JSONResponse({"status": "ready"})

    async def forward(request: Request) -> Response:
        path = request.url.path
        if not path.startswith(prefix + "/"):
            return JSONResponse({"error": "outside the proxied prefix"}, status_code=404)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        headers["x-forwarded-proto"] = request.url.scheme
        headers["x-forwarded-host"] = request.headers["host"]
        headers["x-forwarded-prefix"] = prefix
        answer = await client.request(
            request.method,
            path[len(prefix) :],
            params=request.query_params,
            headers=headers,
            content=await request.body(),
        )
        kept = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_BY_HOP | {"content-encoding"}}
        return Response(answer.content, status_code=answer.status_code, headers=kept)

    methods = ["GET", "POST", "HEAD"]
    return Starlette(routes=[Route("/ready", ready), Route("/{path:path}", forward, methods=methods)])


if __name__ == "__main__":
    port, upstream, prefix = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    uvicorn.run(make_app(upstream, prefix), host="127.0.0.1", port=port, log_level="warning")
