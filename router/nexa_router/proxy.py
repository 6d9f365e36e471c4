"""Forward one request to a service and its answer back, bytes unchanged, streams unbuffered.

This is the hot path: no JSON parsing, no per-request client, headers handled as raw bytes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from nexa_common.errors import APIError, error_body
from nexa_common.modalities import Modality
from nexa_common.public_url import forwarded_headers, public_base_url

from . import upstreams as errors
from .upstreams import Upstream

log = logging.getLogger("nexa.router")

# What the service needs to understand the request; everything else (cookies, the router's own
# Authorization) stays at the router.
_FORWARDED_REQUEST_HEADERS = frozenset(
    {b"content-type", b"accept", b"accept-encoding", b"accept-language", b"user-agent"}
)
# Hop-by-hop headers, and those uvicorn and the request-ID middleware set themselves.
_DROPPED_RESPONSE_HEADERS = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te", b"trailer",
        b"transfer-encoding", b"upgrade", b"server", b"date", b"x-request-id",
    }
)  # fmt: skip


# Answers of known length up to this size are read whole before relaying (see `_buffered`).
_BUFFERED_MAX_BYTES = 256 * 1024


class BodyTooLarge(Exception):
    pass


def _too_large(path: str, limit: int, setting: str) -> APIError:
    return APIError(
        413,
        f"The request body is larger than the {_size(limit)} allowed for {path} (setting {setting}).",
        code="request_too_large",
    )


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):g} MiB" if n >= 1024 * 1024 else f"{n} bytes"


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


async def _limited(stream: AsyncIterator[bytes], limit: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        yield chunk


class _Exchange:
    """An answered upstream request whose body is being relayed; closed exactly once, whichever ends it."""

    __slots__ = ("closed", "response", "upstream")

    def __init__(self, upstream: Upstream, response: httpx.Response) -> None:
        self.upstream = upstream
        self.response = response
        self.closed = False

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.upstream.in_flight.dec()
            await self.response.aclose()

    async def relay(self, sse: bool) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.response.aiter_raw():
                yield chunk
        except httpx.TransportError as exc:
            timeout = isinstance(exc, httpx.TimeoutException)
            modality = self.upstream.modality
            self.upstream.error_counter("timeout" if timeout else "dropped").inc()
            log.warning(
                "%s service %s mid-response: %s",
                modality.value,
                "timed out" if timeout else "dropped the connection",
                type(exc).__name__,
            )
            if not sse:
                # Ending cleanly would make a truncated body look complete; aborting tells the client.
                raise
            failure = errors.timed_out(modality) if timeout else _dropped(modality)
            body = error_body(failure.status, failure.message, code=failure.code)
            yield b"data: " + json.dumps(body).encode() + b"\n\n"
        finally:
            await self.close()


def _client_gone() -> Response:
    # The client left while uploading: nobody reads this; it only ends the request (nginx's 499).
    return Response(status_code=499)


def _dropped(modality: Modality) -> APIError:
    return APIError(
        502, f"The {modality.value} service dropped the connection mid-stream.", code="upstream_disconnected"
    )


BodyCheck = Callable[[bytes], Awaitable[None]]


async def forward(
    request: Request,
    upstream: Upstream | None,
    modality: Modality,
    limit: int,
    limit_setting: str,
    stream_body: bool,
    check: BodyCheck | None = None,
) -> Response:
    """Send the request to `upstream` and relay its answer; raises APIError for 413/502/503/504, and
    whatever `check` raises about a (read, not streamed) body before anything is forwarded."""
    scope = request.scope
    state = scope["state"]
    log_fields: dict[str, object] = {"upstream": modality.value}
    state["log_fields"] = log_fields
    path: str = scope["path"]
    if upstream is None and check is None:
        raise errors.not_configured(modality, path)

    headers = [(k, v) for k, v in scope["headers"] if k in _FORWARDED_REQUEST_HEADERS]
    declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(path, limit, limit_setting)
    headers.append((b"x-request-id", state["request_id"].encode()))
    # The client's view of this router's address, for absolute URLs in the answer (image `url`s).
    headers.extend(forwarded_headers(public_base_url(request, request.app.state.settings.public_base_url)))

    content: bytes | AsyncIterator[bytes]
    try:
        if stream_body:
            # Uploads stream through: never held whole in the router's memory.
            content = _limited(request.stream(), limit)
            if declared is not None:
                headers.append((b"content-length", declared))
        else:
            content = await _read_body(request, limit)
    except BodyTooLarge:
        raise _too_large(path, limit, limit_setting) from None
    except ClientDisconnect:
        return _client_gone()
    if check is not None and isinstance(content, bytes):
        await check(content)  # a model of another kind is turned away here, never forwarded
    if upstream is None:
        raise errors.not_configured(modality, path)

    raw_path: bytes = scope.get("raw_path") or path.encode()
    query: bytes = scope["query_string"]
    url = (raw_path + b"?" + query if query else raw_path).decode("latin-1")
    # The client builds the request (base URL, timeouts); its pool sends it. Client.send's own layers
    # (cookie jar, auth and redirect handling) have nothing to do in a proxy and cost about 0.1 ms of
    # CPU per request, a tenth of the router's budget.
    outgoing = upstream.client.build_request(request.method, url, headers=headers, content=content)
    started = time.perf_counter()
    upstream.in_flight.inc()  # decremented once the answer is relayed, or here if there is none
    try:
        try:
            response = await _send(upstream, outgoing, replayable=not stream_body)
        except BaseException:
            upstream.in_flight.dec()
            raise
    except BodyTooLarge:
        raise _too_large(path, limit, limit_setting) from None
    except httpx.TransportError as exc:
        raise _failure(upstream, exc) from None
    except ClientDisconnect:
        return _client_gone()

    log_fields["upstream_status"] = response.status_code
    log_fields["upstream_ms"] = round((time.perf_counter() - started) * 1000, 2)
    if response.status_code >= 500:
        upstream.error_counter("status_5xx").inc()
    raw_headers = [(k, v) for k, v in response.headers.raw if k.lower() not in _DROPPED_RESPONSE_HEADERS]
    sse = response.headers.get("content-type", "").startswith("text/event-stream")
    length = response.headers.get("content-length", "")
    if not sse and length.isdigit() and int(length) <= _BUFFERED_MAX_BYTES:
        return await _buffered(upstream, response, raw_headers)
    exchange = _Exchange(upstream, response)
    relayed = StreamingResponse(
        exchange.relay(sse), status_code=response.status_code, background=BackgroundTask(exchange.close)
    )
    relayed.raw_headers = raw_headers
    return relayed


# What a pooled keep-alive connection gives when the service closed it (idle expiry, graceful
# shutdown) just as a request was written to it: no answer at all. The service never read that
# request (a graceful shutdown finishes the requests it did read), so it is sent once more, on a
# fresh connection; found by restarting a service under load, where it was a 502. (A service that
# died instead is then found unreachable: a 503 with Retry-After, which is what it is.)
_STALE_CONNECTION = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


async def _send(upstream: Upstream, outgoing: httpx.Request, replayable: bool) -> httpx.Response:
    try:
        return await upstream.transport.handle_async_request(outgoing)
    except _STALE_CONNECTION as exc:
        # A streamed upload cannot be sent again: its bytes are gone.
        if not replayable:
            raise
        upstream.error_counter("resent").inc()
        log.info("%s service closed a pooled connection unanswered (%s); resending", upstream.modality.value,
                 type(exc).__name__)  # fmt: skip
        return await upstream.transport.handle_async_request(outgoing)


async def _buffered(upstream: Upstream, response: httpx.Response, raw_headers: list[tuple[bytes, bytes]]) -> Response:
    """A small answer of known length, relayed in one piece: the streaming machinery (a task group per
    response, one write per chunk) would cost more than the copy, and a failure while reading it can
    still be answered with a proper status."""
    try:
        body = b"".join([chunk async for chunk in response.aiter_raw()])
    except httpx.TransportError as exc:
        raise _failure(upstream, exc) from None
    finally:
        upstream.in_flight.dec()
        await response.aclose()
    relayed = Response(body, status_code=response.status_code)
    relayed.raw_headers = raw_headers
    return relayed


def _failure(upstream: Upstream, exc: httpx.TransportError) -> APIError:
    """The answer for a service that could not be reached or failed before its answer was complete."""
    modality = upstream.modality
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        kind, error = "unreachable", errors.unreachable(modality)
    elif isinstance(exc, httpx.PoolTimeout):
        kind, error = "pool_timeout", errors.busy(modality)
    elif isinstance(exc, httpx.TimeoutException):
        kind, error = "timeout", errors.timed_out(modality)
    else:
        kind, error = "dropped", errors.disconnected(modality)
    upstream.error_counter(kind).inc()
    log.warning("%s service failed (%s): %s", modality.value, kind, type(exc).__name__)
    return error
