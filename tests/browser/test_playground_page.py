"""The page itself: where it is served, what it may load, keyboard use, a phone-sized screen,
and that it ships inside the router's wheel."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from browser_helpers import Page
from selenium.webdriver.common.keys import Keys

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "router" / "nexa_router" / "playground" / "static"
TABS = ("chat", "audio", "images", "models")


def test_page_is_served_at_the_root_and_at_playground(router_url: str) -> None:
    with httpx.Client(base_url=router_url, timeout=30) as http:
        pages = [http.get(path) for path in ("/", "/playground")]
        for answer in pages:
            assert answer.status_code == 200
            assert answer.headers["content-type"].startswith("text/html")
            assert "<title>nexa playground</title>" in answer.text
            policy = answer.headers["content-security-policy"]
            # The browser is told to refuse anything from elsewhere.
            assert "default-src 'none'" in policy and "connect-src 'self'" in policy
        assert pages[0].content == pages[1].content
        assert http.head("/").status_code == 200
        # The operational routes and the API are untouched by the page at /.
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").status_code == 200
        assert "nexa_http_requests" in http.get("/metrics").text
        assert http.get("/docs").status_code == 200
        paths = http.get("/openapi.json").json()["paths"]
        assert "/v1/chat/completions" in paths and "/" not in paths and "/playground" not in paths
        assert http.get("/v1/models").json()["object"] == "list"
        missing = http.get("/playground/static/no-such-file.js")
        assert missing.status_code == 404 and "error" in missing.json()


def test_every_asset_comes_from_the_package(router_url: str) -> None:
    """Each file of the static folder is served, and none names another host (no CDN, no fonts)."""
    with httpx.Client(base_url=router_url, timeout=30) as http:
        for path in sorted(STATIC.iterdir()):
            answer = http.get(f"/playground/static/{path.name}")
            assert answer.status_code == 200, path.name
            assert answer.content == path.read_bytes()
            # The only absolute URL is the SVG namespace (a name, never fetched).
            text = answer.text.replace("http://www.w3.org/2000/svg", "")
            assert "http://" not in text and "https://" not in text and "//cdn" not in text, path.name
            assert "@import" not in text and "@font-face" not in text, path.name


def test_router_wheel_carries_the_page(tmp_path: Path) -> None:
    """A wheel (what the router image installs) holds every static file, not only the Python."""
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(REPO / "router"),
        ],
        check=True,
        timeout=300,
    )
    wheel = next(tmp_path.glob("nexa_router-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in STATIC.iterdir():
        assert f"nexa_router/playground/static/{path.name}" in names


def test_tabs_answer_the_keyboard(page: Page, router_url: str) -> None:
    page.open(router_url)
    page.find("#tab-chat").send_keys(Keys.ARROW_RIGHT)
    page.wait(lambda: page.visible("#panel-audio"), 5, "ArrowRight did not open Audio")
    assert page.js("return document.activeElement.id") == "tab-audio"
    assert not page.visible("#panel-chat")
    page.find("#tab-audio").send_keys(Keys.END)
    page.wait(lambda: page.visible("#panel-models"), 5, "End did not open Models")
    page.find("#tab-models").send_keys(Keys.ARROW_RIGHT)  # wraps around
    page.wait(lambda: page.visible("#panel-chat"), 5, "ArrowRight on the last tab did not wrap")
    # The hash follows the tab, so a reload (or a link) opens the same one.
    page.find("#tab-chat").send_keys(Keys.ARROW_LEFT)
    page.wait(lambda: page.js("return location.hash") == "#models", 5)
    page.driver.refresh()
    page.wait(lambda: page.visible("#panel-models"), 10, "a reload lost the tab")


@pytest.mark.parametrize("width", [390])
def test_phone_sized_screen_has_no_sideways_scrolling(page: Page, router_url: str, width: int) -> None:
    page.cdp(
        "Emulation.setDeviceMetricsOverride", {"width": width, "height": 844, "deviceScaleFactor": 2, "mobile": True}
    )
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model"), 30, "no models listed")
    for tab in TABS:
        page.tab(tab)
        overflow = page.js("return document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the {tab} tab is {overflow}px wider than a {width}px screen"
        # Controls fit: nothing in the open panel sticks out past the right edge.
        widest = page.js(
            "return Math.max(...[...document.querySelectorAll('.panel:not([hidden]) *')]"
            ".filter(e => e.offsetParent !== null && !e.closest('.table-wrap')).map(e => e.getBoundingClientRect().right))"
        )
        assert widest <= width + 1, f"something on the {tab} tab reaches {widest}px"


def test_every_request_stays_on_the_origin(page: Page, router_url: str, shared_data: Path) -> None:
    """Use every tab; every request the browser recorded went to the router itself."""
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60)
    page.fill("#chat-max-tokens", "4")
    page.find("#chat-input").send_keys("Hi", Keys.ENTER)
    page.wait(lambda: page.js("return document.querySelector('.message.assistant[data-outcome]') !== null"), 180)
    page.tab("audio")
    page.find("#audio-file").send_keys(str(shared_data / "jfk.flac"))
    page.find("#audio-submit").click()
    page.wait(lambda: page.js("return document.getElementById('audio-result').dataset.format") == "json", 180)
    page.tab("images")
    page.fill("#image-steps", "2")
    page.choose("#image-width", "128")
    page.choose("#image-height", "128")
    page.find("#image-submit").click()
    page.wait(lambda: page.find_all(".shot img"), 180)
    page.tab("models")
    page.wait(lambda: page.find_all("#models-table tbody tr[data-model]"), 30)

    assert page.foreign_requests() == []
    paths = {urlsplit(r["url"]).path for r in page.requests if r["url"].startswith(router_url)}
    for path in ("/", "/playground/static/main.js", "/playground/static/playground.css", "/v1/models",
                 "/v1/chat/completions", "/v1/audio/transcriptions", "/v1/txt2img"):  # fmt: skip
        assert path in paths, f"{path} not among the recorded requests {sorted(paths)}"
    assert all(r["url"].startswith(router_url) or r["url"].startswith("data:") for r in page.requests)


def test_the_browser_refuses_requests_elsewhere(page: Page, router_url: str) -> None:
    """The page's Content-Security-Policy: even a script that tried could not reach another origin."""
    page.open(router_url)
    outcome = page.js(
        "const violations = [];"
        "document.addEventListener('securitypolicyviolation', e => violations.push(e.violatedDirective));"
        "return fetch('http://127.0.0.2:9/elsewhere').then(() => 'sent', e => e.name)"
        "  .then(result => new Promise(r => setTimeout(() => r({result, violations}), 200)));"
    )
    assert outcome == {"result": "TypeError", "violations": ["connect-src"]}
    page.drain_logs()
    assert any("violates the following Content Security Policy" in entry["message"] for entry in page.console)
    page.console.clear()  # the one error this test meant to cause
