"""A fresh headless Chromium per test on the playground, in front of the real router and services.

Every test's teardown asserts that the page made no request outside the server's own origin.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import API_KEY, Page, missing_browser, start_chromium
from support import router_spec, start_ready

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="session")
def chromium() -> None:
    """Without the browser the browser tests are skipped with the reason, unless NEXA_REQUIRE_BROWSER=1
    (CI sets it, after scripts/install-chromium.sh)."""
    reason = missing_browser()
    if reason and os.environ.get("NEXA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"NEXA_REQUIRE_BROWSER=1 but {reason}")
    if reason:
        pytest.skip(reason)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    report = yield
    if report.when == "call":
        item.stash[CALL_FAILED] = report.failed
    return report


CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture
def browser_flags() -> tuple[str, ...]:
    """Extra Chromium flags; a test module overrides this fixture to add some (a fake microphone)."""
    return ()


@pytest.fixture
def page(
    chromium: None, browser_flags: tuple[str, ...], request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Page]:
    driver = start_chromium(tmp_path / "chromium-profile", browser_flags)
    browser = Page(driver)
    try:
        yield browser
        if request.node.stash.get(CALL_FAILED, False):
            # What the page showed when the test failed, for whoever reads the report.
            driver.save_screenshot(str(tmp_path / "failure.png"))
            (tmp_path / "failure.txt").write_text(driver.find_element("tag name", "body").text)
            print(f"page at failure: {tmp_path / 'failure.png'}")
        foreign = browser.foreign_requests()
        assert browser.requests, "the performance log recorded no request at all"
        assert not foreign, f"the page made requests outside {browser.origins}: {foreign}"
        errors = [
            entry for entry in browser.console if entry.get("level") == "SEVERE" and "v1/" not in entry["message"]
        ]
        assert not errors, f"the page logged errors: {errors}"
    finally:
        driver.quit()


@pytest.fixture(scope="session")
def keyed_router_url(supervisor: Supervisor, text_url: str, audio_url: str, image_url: str) -> str:
    """A second router in front of the same real services, requiring an API key."""
    upstreams = {"text": text_url, "audio": audio_url, "image": image_url}
    spec = router_spec(upstreams, env={"NEXA_ROUTER_API_KEYS": API_KEY}, name="router-browser-keys")
    return start_ready(supervisor, spec)
