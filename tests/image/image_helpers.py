"""Small helpers the image tests share: PNG decoding and request bodies at test-friendly sizes."""

from __future__ import annotations

import base64
import io
from typing import Any

from PIL import Image

# Tiny: the pipeline's images are noise, so the tests check plumbing, not pictures.
SMALL: dict[str, Any] = {"width": 64, "height": 64, "sample_steps": 2}


def png_of(b64: str) -> bytes:
    data = base64.b64decode(b64)
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    return data


def size_of(png: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        assert image.format == "PNG"
        return image.size


def error_of(response: Any) -> dict[str, Any]:
    """The OpenAI error body of a 4xx/5xx answer (and a check that it has that shape)."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"]), body
    error: dict[str, Any] = body["error"]
    return error
