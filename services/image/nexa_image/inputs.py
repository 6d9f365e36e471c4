"""Where an img2img input comes from: an upload, base64 in JSON, or a file in the input folder.

`image_path` is the seed's server-side path. The seed read any file the server could; here it
must name a file inside the configured input folder, checked after resolving symlinks.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path, PurePath

from nexa_common.errors import APIError

_DATA_URL = re.compile(r"^data:[\w.+-]+/[\w.+-]+(;[\w=.+-]+)*;base64,", re.IGNORECASE)


def decode_base64_image(text: str, max_bytes: int) -> bytes:
    """Bytes of a base64 image, with or without a `data:image/...;base64,` prefix."""
    text = _DATA_URL.sub("", text.strip(), count=1)
    # 4 base64 characters carry 3 bytes: refuse oversize input before decoding it.
    if len(text) > (max_bytes // 3 + 1) * 4 + 16:
        raise APIError(400, f"The input image is larger than {max_bytes} bytes.", param="image", code="image_too_large")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise APIError(400, "'image' is not valid base64.", param="image", code="invalid_image") from None


def resolve_input_path(input_dir: Path | None, image_path: str) -> Path:
    """The real file `image_path` names, if it lies inside `input_dir`; every escape is a 400.

    Messages never echo paths: they would tell a caller about the server's filesystem.
    """
    if input_dir is None:
        raise APIError(
            400,
            "'image_path' is disabled on this server (no input folder is configured); upload the image or send "
            "it as base64 in 'image' instead.",
            param="image_path",
            code="image_path_disabled",
        )
    if "\x00" in image_path or ".." in PurePath(image_path).parts:
        raise APIError(400, "'image_path' may not contain '..'.", param="image_path", code="invalid_image_path")
    root = input_dir.resolve()
    candidate = Path(image_path)
    if not candidate.is_absolute():
        candidate = root / candidate
    try:
        # strict: the file must exist; resolve() follows every symlink, so the check below sees the target.
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        real = None
    if real is None or not real.is_relative_to(root):
        outside = real is not None or not candidate.absolute().is_relative_to(root)
        raise APIError(
            400,
            "'image_path' must name a file inside the server's input folder."
            if outside
            else "'image_path' names no file in the server's input folder.",
            param="image_path",
            code="invalid_image_path",
        )
    if not real.is_file():
        raise APIError(400, "'image_path' does not name a file.", param="image_path", code="invalid_image_path")
    return real


def read_input_file(path: Path, max_bytes: int) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)
    except OSError:
        raise APIError(400, "'image_path' could not be read.", param="image_path", code="invalid_image_path") from None
    if len(data) > max_bytes:
        raise APIError(
            400, f"The input image is larger than {max_bytes} bytes.", param="image_path", code="image_too_large"
        )
    return data
