"""Images in the browser against the real router and image service (the tiny pipeline)."""

from __future__ import annotations

import io
from pathlib import Path

from browser_helpers import Page
from PIL import Image


def open_images(page: Page, router_url: str) -> None:
    page.open(router_url, "images")
    page.wait(lambda: page.options("#image-model").get("tiny-sd"), 60, "tiny-sd not offered")


def generate(page: Page, count: int) -> dict[str, object]:
    page.find("#image-submit").click()
    page.wait(
        lambda: page.visible("#image-progress-box") or len(page.find_all(".shot")) >= count, 10, "no progress shown"
    )
    page.wait(lambda: len(page.find_all(".shot")) >= count or page.visible("#image-error"), 180, "no image appeared")
    assert not page.visible("#image-error"), page.text("#image-error")
    assert not page.visible("#image-progress-box")
    # The newest picture is first, and the browser has decoded it.
    return page.js(
        "const shot = document.querySelector('.shot'); const img = shot.querySelector('img');"
        "const facts = {}; const dts = shot.querySelectorAll('dt');"
        "shot.querySelectorAll('dd').forEach((dd, i) => { facts[dts[i].textContent] = dd.textContent; });"
        "return {complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,"
        "        src: img.src.slice(0, 22), facts};"
    )


def test_txt2img_shows_the_image_with_its_parameters(page: Page, router_url: str) -> None:
    open_images(page, router_url)
    page.fill("#image-prompt", "a red fox in the snow")
    page.fill("#image-negative", "blurry")
    page.choose("#image-width", "192")
    page.choose("#image-height", "128")
    page.fill("#image-steps", "4")
    page.fill("#image-seed", "42")
    shot = generate(page, 1)
    assert shot["complete"] and (shot["width"], shot["height"]) == (192, 128), shot
    assert shot["src"] == "data:image/png;base64,"
    facts = shot["facts"]
    assert facts["prompt"] == "a red fox in the snow" and facts["negative"] == "blurry"
    assert facts["size"] == "192×128" and facts["steps"] == "4" and facts["seed"] == "42"
    assert facts["mode"] == "txt2img" and facts["model"] == "tiny-sd"
    # A second one (random seed) lands first in the gallery; the progress now has an estimate.
    page.fill("#image-seed", "")
    second = generate(page, 2)
    assert second["facts"]["seed"].isdigit() and second["facts"]["seed"] != "42"
    # "Use these settings" puts a picture's parameters back in the form.
    page.find_all(".shot")[1].find_element("css selector", ".actions button").click()
    assert page.find("#image-seed").get_attribute("value") == "42"


def test_img2img_transforms_an_uploaded_image(page: Page, router_url: str, tmp_path: Path) -> None:
    source = tmp_path / "input.png"
    buffer = io.BytesIO()
    Image.new("RGB", (128, 128), (30, 120, 200)).save(buffer, "PNG")
    source.write_bytes(buffer.getvalue())
    open_images(page, router_url)
    page.find('input[name="image-mode"][value="img2img"]').click()
    assert page.visible("#image-input")
    page.find("#image-input").send_keys(str(source))
    page.choose("#image-width", "128")
    page.choose("#image-height", "128")
    page.fill("#image-steps", "4")
    page.fill("#image-seed", "7")
    shot = generate(page, 1)
    assert shot["complete"] and shot["width"] == 128
    assert shot["facts"]["mode"] == "img2img, strength 0.75"


def test_img2img_without_an_input_says_so(page: Page, router_url: str) -> None:
    open_images(page, router_url)
    page.find('input[name="image-mode"][value="img2img"]').click()
    page.find("#image-submit").click()
    page.wait(lambda: page.visible("#image-error"), 5)
    assert "Choose an input image" in page.text("#image-error")
