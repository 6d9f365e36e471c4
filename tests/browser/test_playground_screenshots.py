"""Screenshots of every tab, light and dark, taken after real use (a chat answer, a transcript,
two images), and one on a phone-sized screen; the README shows them.

They are written to a temporary folder; to refresh the committed ones:
    NEXA_PLAYGROUND_SCREENSHOTS=docs/playground .venv/bin/pytest tests/browser/test_playground_screenshots.py
"""

from __future__ import annotations

import os
from pathlib import Path

from browser_helpers import Page
from PIL import Image, ImageStat
from selenium.webdriver.common.keys import Keys

REPO = Path(__file__).resolve().parents[2]
TABS = ("chat", "audio", "images", "models")
DESKTOP = (1200, 760)
PHONE = (390, 844)


def output_dir(tmp_path: Path) -> Path:
    chosen = os.environ.get("NEXA_PLAYGROUND_SCREENSHOTS")
    folder = (REPO / chosen) if chosen else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def viewport(page: Page, size: tuple[int, int], mobile: bool = False) -> None:
    params = {"width": size[0], "height": size[1], "deviceScaleFactor": 1, "mobile": mobile}
    page.cdp("Emulation.setDeviceMetricsOverride", params)


def theme(page: Page, scheme: str) -> None:
    page.cdp("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": scheme}]})


def shoot(page: Page, path: Path) -> Image.Image:
    page.js("window.scrollTo(0, 0); document.activeElement.blur()")
    page.driver.save_screenshot(str(path))
    image = Image.open(path).convert("RGB")
    # Committed copies stay small: a 128-colour palette is plenty for a flat UI.
    image.quantize(colors=128).save(path, optimize=True)
    return image


def use_every_tab(page: Page, router_url: str, shared_data: Path) -> None:
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60)
    page.fill("#chat-system", "You are a helpful assistant. Answer briefly.")
    page.fill("#chat-max-tokens", "60")
    page.fill("#chat-temperature", "0")
    page.find("#chat-input").send_keys("Write a Python function that adds two numbers.", Keys.ENTER)
    page.wait(lambda: page.js("return document.querySelector('.message.assistant[data-outcome]') !== null"), 240)

    page.tab("audio")
    page.wait(lambda: page.options("#audio-model").get("whisper-tiny.en"), 60)
    page.find("#audio-file").send_keys(str(shared_data / "jfk.flac"))
    page.choose("#audio-format", "verbose_json")
    page.find("#audio-submit").click()
    page.wait(lambda: page.js("return document.getElementById('audio-result').dataset.format") == "verbose_json", 180)

    page.tab("images")
    page.wait(lambda: page.options("#image-model").get("tiny-sd"), 60)
    page.fill("#image-steps", "8")
    for seed in ("1", "2"):
        page.fill("#image-seed", seed)
        page.find("#image-submit").click()
        page.wait(lambda s=seed: page.find_all(f'.shot[data-seed="{s}"]'), 180)

    page.tab("models")
    page.wait(lambda: len(page.find_all("#models-table tbody tr[data-model]")) >= 3, 30)


def test_screenshots_of_every_tab(page: Page, router_url: str, shared_data: Path, tmp_path: Path) -> None:
    folder = output_dir(tmp_path)
    viewport(page, DESKTOP)
    use_every_tab(page, router_url, shared_data)
    brightness: dict[tuple[str, str], float] = {}
    for scheme in ("light", "dark"):
        theme(page, scheme)
        for tab in TABS:
            page.tab(tab)
            image = shoot(page, folder / f"{tab}-{scheme}.png")
            assert image.size == DESKTOP
            # Not a blank page: text, controls and pictures make many colours.
            assert len(image.getcolors(maxcolors=1 << 20) or []) > 50, f"{tab}-{scheme} looks blank"
            brightness[(tab, scheme)] = ImageStat.Stat(image.convert("L")).mean[0]
    for tab in TABS:
        assert brightness[(tab, "dark")] < brightness[(tab, "light")] - 60, f"{tab}: dark is not dark"

    theme(page, "light")
    viewport(page, PHONE, mobile=True)
    page.tab("chat")
    phone = shoot(page, folder / "chat-phone.png")
    assert phone.size == PHONE
