"""Optional API keys: with keys configured, every /v1 route needs `Authorization: Bearer <key>` or
`x-api-key: <key>` (the header Anthropic's clients send)."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from nexa_common.errors import APIError

# auto_error=False: a missing header is our 401 in the OpenAI error body, not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False,
    description="Needed only when the server is started with API keys (NEXA_ROUTER_API_KEYS).",
)
api_key_header = APIKeyHeader(
    name="x-api-key",
    auto_error=False,
    description="The same keys in Anthropic's header, as its SDKs and Claude Code send them.",
)


async def require_api_key(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    api_key: str | None = Depends(api_key_header),
) -> None:
    keys: tuple[bytes, ...] = request.app.state.api_keys
    if not keys:
        return
    if credentials is None and not api_key:
        raise APIError(
            401,
            "Missing API key: send it as `Authorization: Bearer <key>` or `x-api-key: <key>`.",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = [c.encode() for c in (credentials.credentials if credentials else None, api_key) if c]
    # Compare against every key, in constant time each, so timing tells nothing about which or how much
    # matched. Either header may carry the key (a client may send both, one of them a placeholder).
    matched = False
    for candidate in given:
        for key in keys:
            matched |= hmac.compare_digest(candidate, key)
    if not matched:
        # The key itself is never echoed nor logged.
        raise APIError(401, "Incorrect API key.", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
