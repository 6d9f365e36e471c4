"""PNG encoding (byte-for-byte reproducible) and decoding of untrusted input images."""

from __future__ import annotations

import io
import warnings

from PIL import Image

from nexa_common.errors import APIError


def encode_png(image: Image.Image) -> bytes:
    """PNG bytes that depend on the pixels only: no timestamps or other metadata, fixed compression."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, format="PNG", compress_level=6, optimize=False)
    return buffer.getvalue()


def decode_image(data: bytes, *, max_pixels: int, param: str) -> Image.Image:
    """An RGB image from uploaded bytes; anything undecodable or too large is a 400."""
    if not data:
        raise APIError(400, "The input image is empty.", param=param, code="invalid_image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise APIError(
                    400,
                    f"The input image is {width}x{height} pixels; at most {max_pixels} pixels are accepted.",
                    param=param,
                    code="image_too_large",
                )
            image.load()
    except APIError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise APIError(400, "The input image is too large to decode.", param=param, code="image_too_large") from None
    except Exception:  # PIL raises many types for corrupt or unsupported data
        raise APIError(
            400,
            "The input is not an image this server can decode (PNG, JPEG, WebP, ...).",
            param=param,
            code="invalid_image",
        ) from None
    return image.convert("RGB")
