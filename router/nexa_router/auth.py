"""Optional API keys: with keys configured, every /v1 route needs `Authorization: Bearer <key>`."""

from __future__ import annotations

import hmac

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from nexa_common.errors import APIError

# auto_error=False: a missing header is our 401 in the OpenAI error body, not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False,
    description="Needed only when the server is started with API keys (NEXA_ROUTER_API_KEYS).",
)


async def require_api_key(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
    keys: tuple[bytes, ...] = request.app.state.api_keys
    if not keys:
        return
    if credentials is None:
        raise APIError(
            401,
            "Missing API key: send it as `Authorization: Bearer <key>`.",
            code="missing_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )
    given = credentials.credentials.encode()
    # Compare against every key, in constant time each, so timing tells nothing about which or how much matched.
    matched = False
    for key in keys:
        matched |= hmac.compare_digest(given, key)
    if not matched:
        # The key itself is never echoed nor logged.
        raise APIError(401, "Incorrect API key.", code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
