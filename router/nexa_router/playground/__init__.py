"""The browser playground: one static page at `/` and `/playground`, its assets from this package.

The page is plain HTML, CSS and JavaScript (no build step, no CDN, no external fonts), so it works
air-gapped and the images need no Node. It talks only to the public `/v1` API, with the same
requests any client sends; the API keys guard those calls, not the page.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(__file__).with_name("static")
ASSETS_PATH = "/playground/static"

# The browser itself then refuses any request the page might make outside this origin: scripts,
# styles, fetches, images and media come from here (images and audio also from data:/blob: URLs
# the page makes from API answers); nothing may frame it or submit it elsewhere.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' data: blob:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    # Revalidated on every visit (cheap: it is small), so an upgraded server never serves a stale page.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def install_playground(app: FastAPI) -> None:
    """Serve the page at `/` and `/playground`, and its assets under `/playground/static/`."""
    page = (STATIC / "index.html").read_bytes()

    async def playground() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    for path in ("/", "/playground"):
        app.add_api_route(path, playground, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount(ASSETS_PATH, StaticFiles(directory=STATIC), name="playground-static")
