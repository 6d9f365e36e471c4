"""The image service's request parsing: OpenAI sizes, configured bounds, seeds, base64 inputs, and
`image_path` confined to the input folder."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from nexa_common.errors import APIError
from nexa_image.generation import MAX_SEED, seeds_for
from nexa_image.inputs import decode_base64_image, resolve_input_path
from nexa_image.settings import Settings
from nexa_image.validation import check_size, check_steps, check_strength, parse_size, size_multiple


def test_sizes() -> None:
    assert parse_size("256x128") == (256, 128)
    assert size_multiple(8) == 8 and size_multiple(2) == 8 and size_multiple(16) == 16
    settings = Settings(max_width=512, max_height=512, min_size=64)
    check_size(512, 64, settings, 8)
    for width, height in ((520, 64), (64, 32), (100, 64)):
        with pytest.raises(APIError) as refused:
            check_size(width, height, settings, 8, param="size")
        assert refused.value.param == "size" and refused.value.code == "invalid_size"


def test_steps_and_strength() -> None:
    settings = Settings(max_steps=10)
    check_steps(10, settings, 999)
    with pytest.raises(APIError) as refused:
        check_steps(11, settings, 999)
    assert "this server allows 1 to 10" in refused.value.message
    with pytest.raises(APIError) as refused:
        check_steps(10, settings, 8)  # the model's scheduler places fewer than the setting allows
    assert "this model's scheduler allows 1 to 8" in refused.value.message
    check_strength(4, 0.25)
    with pytest.raises(APIError) as refused:
        check_strength(3, 0.25)  # int(0.75) steps: none would run
    assert refused.value.param == "strength"


def test_seeds_follow_the_first_and_wrap() -> None:
    assert seeds_for(5, 3) == [5, 6, 7]
    assert seeds_for(MAX_SEED, 2) == [MAX_SEED, 0]
    drawn = seeds_for(None, 2)
    assert 0 <= drawn[0] <= MAX_SEED and drawn[1] == (drawn[0] + 1) % (MAX_SEED + 1)


def test_base64_with_and_without_a_data_url() -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 10
    text = base64.b64encode(png).decode()
    assert decode_base64_image(text, 1000) == png
    assert decode_base64_image(f"data:image/png;base64,{text}", 1000) == png
    assert decode_base64_image(text[:8] + "\n" + text[8:], 1000) == png  # line breaks are fine
    with pytest.raises(APIError) as refused:
        decode_base64_image("***", 1000)
    assert refused.value.code == "invalid_image"
    with pytest.raises(APIError) as refused:
        decode_base64_image("A" * 5000, 1000)
    assert refused.value.code == "image_too_large"


def test_image_path_stays_inside_the_input_folder(tmp_path: Path) -> None:
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    (inputs / "sub" / "a.png").write_bytes(b"png")
    (tmp_path / "secret.png").write_bytes(b"secret")
    (inputs / "link.png").symlink_to(tmp_path / "secret.png")
    assert resolve_input_path(inputs, "sub/a.png") == (inputs / "sub" / "a.png").resolve()
    assert resolve_input_path(inputs, str(inputs / "sub" / "a.png")) == (inputs / "sub" / "a.png").resolve()
    for escape in ("../secret.png", str(tmp_path / "secret.png"), "link.png", "sub/../../secret.png", "a\x00b", "sub"):
        with pytest.raises(APIError) as refused:
            resolve_input_path(inputs, escape)
        assert refused.value.param == "image_path" and str(tmp_path) not in refused.value.message
    with pytest.raises(APIError) as refused:
        resolve_input_path(None, "a.png")
    assert refused.value.code == "image_path_disabled"
