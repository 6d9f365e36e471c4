"""Calls from the translation layers to the text service: a streamed chat answer, parsed chunk by
chunk, and plain JSON routes (token counting). Failures become the same APIErrors the proxy
answers (503 unreachable, 504 timeout, 502 dropped), and the service's own error answers keep their
status, message, param and code."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from nexa_common.catalogue import Modality
from nexa_common.errors import APIError

from .. import upstreams as errors
from ..upstreams import Upstream, transport_failure

CHAT_PATH = "/v1/chat/completions"
_ERROR_BODY_MAX_BYTES = 64 * 1024


class StreamFailed(Exception):
    """The text service failed after its stream began (an error event, or a dropped connection)."""

    def __init__(self, error: APIError) -> None:
        super().__init__(error.message)
        self.error = error


def _service(upstream: Upstream | None, path: str) -> Upstream:
    if upstream is None:
        raise errors.not_configured(Modality.TEXT, path)
    return upstream


def _error_from(status: int, body: bytes, headers: httpx.Headers) -> APIError:
    """The service's OpenAI error body as an APIError (Retry-After kept, for 429 and 503)."""
    try:
        error = json.loads(body)["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        return APIError(502, f"The text service answered HTTP {status} without an error body.", code="upstream_error")
    kept = {"Retry-After": headers["retry-after"]} if "retry-after" in headers else None
    param = error.get("param") if isinstance(error.get("param"), str) else None
    code = error.get("code") if isinstance(error.get("code"), str) else None
    return APIError(status, message, param=param, code=code, headers=kept)


class ChatStream:
    """An open `"stream": true` chat answer; `chunks()` yields its parsed chunks; close it once done."""

    def __init__(self, upstream: Upstream, response: httpx.Response) -> None:
        self.upstream = upstream
        self.response = response
        self.closed = False

    async def chunks(self) -> AsyncIterator[dict[str, Any]]:
        try:
            async for line in self.response.aiter_lines():
                if not line.startswith("data: "):
                    continue
                data = line[len("data: ") :]
                if data == "[DONE]":
                    return
                chunk = json.loads(data)
                if "error" in chunk:
                    raise StreamFailed(_error_from(500, data.encode(), httpx.Headers()))
                yield chunk
        except httpx.TransportError as exc:
            raise StreamFailed(transport_failure(self.upstream, exc)) from None

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.upstream.in_flight.dec()
            # Closing the connection mid-stream is what tells the text service to stop generating.
            await self.response.aclose()


async def open_chat_stream(upstream: Upstream | None, body: dict[str, Any], request_id: str) -> ChatStream:
    """Send a chat request with `"stream": true`; an error answer (before any event) raises its APIError."""
    service = _service(upstream, CHAT_PATH)
    outgoing = service.client.build_request(
        "POST", CHAT_PATH, json={**body, "stream": True}, headers={"x-request-id": request_id}
    )
    service.in_flight.inc()
    try:
        response = await service.client.send(outgoing, stream=True)
    except httpx.TransportError as exc:
        service.in_flight.dec()
        raise transport_failure(service, exc) from None
    except BaseException:
        service.in_flight.dec()
        raise
    stream = ChatStream(service, response)
    if response.status_code == 200:
        return stream
    try:
        if response.status_code >= 500:
            service.error_counter("status_5xx").inc()
        content = b""
        async for piece in response.aiter_bytes():
            content += piece
            if len(content) > _ERROR_BODY_MAX_BYTES:
                break
    except httpx.TransportError as exc:
        raise transport_failure(service, exc) from None
    finally:
        await stream.close()
    raise _error_from(response.status_code, content, response.headers)


async def post_json(upstream: Upstream | None, path: str, body: dict[str, Any], request_id: str) -> dict[str, Any]:
    """POST a JSON body to a text-service route and return its JSON answer."""
    service = _service(upstream, path)
    service.in_flight.inc()
    try:
        response = await service.client.post(path, json=body, headers={"x-request-id": request_id})
    except httpx.TransportError as exc:
        raise transport_failure(service, exc) from None
    finally:
        service.in_flight.dec()
    if response.status_code != 200:
        if response.status_code >= 500:
            service.error_counter("status_5xx").inc()
        raise _error_from(response.status_code, response.content, response.headers)
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise APIError(502, f"The text service answered {path} with something other than JSON.", code="upstream_error")
    return answer


def renamed(error: APIError, names: dict[str, str]) -> APIError:
    """The service's error with its `param` given the translated API's name for that field
    (`messages.2.content` → `input`): the client knows its own fields, not the chat request's."""
    if error.param:
        root = error.param.split(".", 1)[0].split("[", 1)[0]
        if root in names:
            error.param = names[root]
    return error
