"""The base URL a client used to reach the API, for absolute URLs in answers (an image's `url`).

OpenAI answers with absolute URLs, and clients fetch them as they are (`httpx.get(image.url)`), so
a path alone is not enough. Behind a reverse proxy or an ingress the address this process sees is
not the client's: the proxy says what the client used in `Forwarded` (RFC 7239) or
`X-Forwarded-Proto` / `-Host` / `-Port` / `-Prefix`, and an operator may fix it with a setting
(`PUBLIC_BASE_URL`), which wins. The router passes its client's view on to the services in the
`X-Forwarded-*` headers (`forwarded_headers`), so a service behind it answers with the router's
public address.

The headers are trusted as they come: they only shape URLs in the answer to the same request,
which is never cached for others (image files are `Cache-Control: private`).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from starlette.requests import Request

_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(:[0-9]{1,5})?$")
_PREFIX = re.compile(r"^(/[A-Za-z0-9._~%!$&'()*+,;=:@-]*)*$")
_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _first(value: str | None) -> str | None:
    """The first hop's value of a comma-separated forwarding header (the one the client talked to)."""
    if not value:
        return None
    first = value.split(",", 1)[0].strip().strip('"')
    return first or None


def _forwarded(header: str | None) -> dict[str, str]:
    """`Forwarded: for=1.2.3.4;proto=https;host=api.example.com` (first element) as a dict."""
    element = (header or "").split(",", 1)[0]
    pairs = (part.split("=", 1) for part in element.split(";") if "=" in part)
    return {key.strip().lower(): value.strip().strip('"') for key, value in pairs}


def public_base_url(request: Request, configured: str = "") -> str:
    """`scheme://host[:port][/prefix]`, without a trailing slash."""
    if configured:
        return configured.rstrip("/")
    headers = request.headers
    forwarded = _forwarded(headers.get("forwarded"))
    proto = (forwarded.get("proto") or _first(headers.get("x-forwarded-proto")) or request.url.scheme).lower()
    if proto not in _DEFAULT_PORTS:
        proto = request.url.scheme
    host = forwarded.get("host") or _first(headers.get("x-forwarded-host")) or headers.get("host") or ""
    if not _HOST.fullmatch(host):
        host = request.url.netloc  # a malformed header never reaches a URL
    port = _first(headers.get("x-forwarded-port"))
    if port and port.isdigit() and ":" not in host.rsplit("]", 1)[-1] and port != _DEFAULT_PORTS[proto]:
        host = f"{host}:{port}"
    prefix = _first(headers.get("x-forwarded-prefix"))
    if prefix is None or not _PREFIX.fullmatch(prefix):
        prefix = request.scope.get("root_path", "") or ""
    return f"{proto}://{host}{prefix.rstrip('/')}"


def forwarded_headers(base_url: str) -> list[tuple[bytes, bytes]]:
    """The `X-Forwarded-*` headers that make a service behind this one see `base_url` as its public base."""
    parts = urlsplit(base_url)
    headers = [(b"x-forwarded-proto", parts.scheme.encode()), (b"x-forwarded-host", parts.netloc.encode())]
    if parts.path and parts.path != "/":
        headers.append((b"x-forwarded-prefix", parts.path.rstrip("/").encode()))
    return headers
