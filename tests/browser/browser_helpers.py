"""Drive the playground in Debian's headless Chromium through chromium-driver (Selenium), and
record every request the page makes (Chromium's performance log: the DevTools Network events)."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

T = TypeVar("T")

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW = (1280, 860)
# The key of the tests' keyed router.
API_KEY = "browser-key-5d1e"
# The machine has no network but the package registries: a browser that phones home (updates,
# sync, safe browsing, QUIC probes) would stall or log errors, so all of that is off.
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
)


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).exists() and not shutil.which(Path(path).name):
            return f"{path} not found: install Debian's chromium and chromium-driver (scripts/install-chromium.sh)"
    return None


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# URL schemes that make no network request: the page's images and audio built from API answers.
LOCAL_SCHEMES = ("data", "blob", "about")


def start_chromium(profile: Path, extra_flags: tuple[str, ...] = ()) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, *extra_flags):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")  # a new, empty profile per test
    options.add_argument(f"--window-size={WINDOW[0]},{WINDOW[1]}")
    # The performance log carries the DevTools Network events: every request the page makes.
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    # Both paths given: Selenium looks nothing up and downloads nothing.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return driver


class Page:
    """One browser tab on the playground, with the requests it made and the origins it was opened on."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.origins: set[str] = set()
        self.requests: list[dict[str, str]] = []
        self.console: list[dict[str, Any]] = []

    # -- navigation and waiting

    def open(self, base_url: str, tab: str = "chat", path: str = "/") -> None:
        self.origins.add(origin(base_url))
        self.driver.get(f"{base_url}{path}#{tab}")
        self.wait(lambda: self.js("return document.documentElement.dataset.ready === 'true'"), 20, "page never started")

    def wait(self, predicate: Callable[[], T], timeout: float = 30.0, message: str = "") -> T:
        return WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(lambda _: predicate(), message)

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def cdp(self, command: str, params: dict[str, Any]) -> Any:
        return self.driver.execute_cdp_cmd(command, params)

    # -- elements

    def find(self, css: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css: str) -> list[WebElement]:
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        elements = self.find_all(css)
        return elements[0].text if elements else ""

    def visible(self, css: str) -> bool:
        elements = self.find_all(css)
        return bool(elements) and elements[0].is_displayed()

    def fill(self, css: str, value: str) -> None:
        field = self.find(css)
        field.clear()
        field.send_keys(value)

    def choose(self, css: str, value: str) -> None:
        Select(self.find(css)).select_by_value(value)

    def options(self, css: str) -> dict[str, bool]:
        """A select's options: value -> enabled."""
        return {o.get_attribute("value") or "": o.is_enabled() for o in Select(self.find(css)).options}

    def tab(self, name: str) -> None:
        self.find(f"#tab-{name}").click()
        self.wait(lambda: self.visible(f"#panel-{name}"), 5, f"{name} tab did not open")

    # -- what the page sent

    def drain_logs(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message.get("method") == "Network.requestWillBeSent":
                if params.get("documentURL", "").startswith("chrome:"):
                    continue  # the browser's own start page, loaded before the test navigates
                request = params["request"]
                self.requests.append(
                    {"url": request["url"], "method": request["method"], "type": params.get("type", "")}
                )
            elif message.get("method") == "Network.webSocketCreated":
                self.requests.append({"url": params["url"], "method": "GET", "type": "WebSocket"})
        self.console.extend(self.driver.get_log("browser"))

    def foreign_requests(self) -> list[dict[str, str]]:
        """Requests to anywhere but the origins this page was opened on."""
        self.drain_logs()
        foreign = []
        for request in self.requests:
            scheme = urlsplit(request["url"]).scheme
            if scheme in LOCAL_SCHEMES:
                continue
            if scheme not in ("http", "https", "ws", "wss") or origin(request["url"]) not in self.origins:
                foreign.append(request)
        return foreign


def wait_until(predicate: Callable[[], T], timeout: float, interval: float = 0.1) -> T | None:
    """Poll `predicate` until it is truthy or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def sample(text: str, name: str, labels: dict[str, str]) -> float:
    """One sample of a Prometheus text page (0 when the labelled series does not exist yet)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + "{"):
            series, value = line.rsplit(" ", 1)
            present = series[len(name) + 1 : -1].split(",")
            if all(part in present for part in wanted.split(",")):
                return float(value)
    return 0.0


# -- the Chat tab

# Records the assistant message's visible text length at every change, with the time: what a
# person watching the page would see, frame by frame.
WATCH_ANSWER = """
window.__growth = [];
const box = document.getElementById('chat-messages');
new MutationObserver(() => {
  const answers = box.querySelectorAll('.message.assistant');
  const last = answers[answers.length - 1];
  if (last) window.__growth.push([performance.now(), last.querySelector('.content').textContent.length,
                                  last.dataset.outcome || null]);
}).observe(box, {subtree: true, childList: true, characterData: true, attributes: true});
"""


def open_chat(page: Page, router_url: str) -> None:
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60, "smollm2 not offered in the picker")


def ask(page: Page, text: str, max_tokens: int, temperature: str = "0.7") -> None:
    page.fill("#chat-max-tokens", str(max_tokens))
    page.fill("#chat-temperature", temperature)
    page.find("#chat-input").send_keys(text, Keys.ENTER)


def last_answer(page: Page) -> dict[str, str | None]:
    return page.js(
        "const m = [...document.querySelectorAll('.message.assistant')].pop();"
        "return m ? {text: m.querySelector('.content').textContent, outcome: m.dataset.outcome || null,"
        " stats: m.querySelector('.stats').textContent, model: m.dataset.model || null} : null"
    )
