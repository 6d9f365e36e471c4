"""API keys and errors in the browser: the page asks for a key when the API answers 401, keeps it
in the tab's session only, and shows every API error as the API's own message."""

from __future__ import annotations

from pathlib import Path

import httpx
from browser_helpers import API_KEY, Page
from selenium.webdriver.common.keys import Keys


def dialog_open(page: Page) -> bool:
    return bool(page.js("return document.getElementById('key-dialog').open"))


def enter_key(page: Page, key: str) -> None:
    page.wait(lambda: dialog_open(page), 30, "the page did not ask for a key")
    page.fill("#key-input", key)
    page.find("#key-input").send_keys(Keys.ENTER)


def test_page_asks_for_a_key_and_works_after_it(page: Page, keyed_router_url: str) -> None:
    # The page itself needs no key; its API calls do.
    assert httpx.get(keyed_router_url + "/").status_code == 200
    assert httpx.get(keyed_router_url + "/v1/models").status_code == 401
    page.open(keyed_router_url)
    page.wait(lambda: dialog_open(page), 30, "the page did not ask for a key")
    assert "Missing API key" in page.text("#key-reason")
    enter_key(page, "not-the-key")
    # A wrong key is refused with the server's own words, and the page asks again.
    page.wait(lambda: dialog_open(page) and "Incorrect API key" in page.text("#key-reason"), 30)
    enter_key(page, API_KEY)
    page.wait(lambda: not dialog_open(page), 30, "the right key was not accepted")
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60, "no models after the key")
    assert page.visible("#key-status")
    storage = page.js(
        "return {session: sessionStorage.getItem('nexa.apiKey'), local: localStorage.length, cookie: document.cookie}"
    )
    assert storage == {"session": API_KEY, "local": 0, "cookie": ""}
    # A keyed request works end to end: a short chat answer.
    page.fill("#chat-max-tokens", "8")
    page.find("#chat-input").send_keys("Hi", Keys.ENTER)
    page.wait(
        lambda: page.js("return document.querySelector('.message.assistant[data-outcome]')?.dataset.outcome"), 180
    )
    assert page.js("return document.querySelector('.message.assistant').dataset.outcome") == "done"
    assert not page.visible("#chat-error")
    # The key survives a reload of the tab (session storage) without asking again.
    page.driver.refresh()
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60, "no models after a reload")
    assert not dialog_open(page)
    # Forget drops it; the next call asks again.
    page.find("#key-forget").click()
    assert page.js("return sessionStorage.getItem('nexa.apiKey')") is None
    page.tab("models")
    page.wait(lambda: dialog_open(page), 30, "no prompt after Forget")


def test_cancelled_key_prompt_shows_the_api_message(page: Page, keyed_router_url: str) -> None:
    page.open(keyed_router_url)
    page.wait(lambda: dialog_open(page), 30, "the page did not ask for a key")
    page.find('#key-form button[value="cancel"]').click()
    page.wait(lambda: page.visible("#fatal"), 10, "nothing said after cancelling")
    assert "Missing API key" in page.text("#fatal") and "HTTP 401" in page.text("#fatal")


def test_a_4xx_from_the_audio_api_is_shown_as_its_message(page: Page, router_url: str, tmp_path: Path) -> None:
    not_audio = tmp_path / "notes.txt"
    not_audio.write_text("these are not audio samples\n" * 20)
    answer = httpx.post(
        router_url + "/v1/audio/transcriptions",
        files={"file": ("notes.txt", not_audio.read_bytes(), "text/plain")},
        data={"response_format": "json", "model": "whisper-tiny.en"},
        timeout=60,
    )
    assert 400 <= answer.status_code < 500, answer.text
    expected = answer.json()["error"]["message"]
    page.open(router_url, "audio")
    page.wait(lambda: page.options("#audio-model").get("whisper-tiny.en"), 60)
    page.find("#audio-file").send_keys(str(not_audio))
    page.find("#audio-submit").click()
    page.wait(lambda: page.visible("#audio-error"), 60, "no error shown")
    shown = page.text("#audio-error")
    assert expected in shown and f"HTTP {answer.status_code}" in shown, shown


def test_a_4xx_from_the_chat_api_is_shown_as_its_message(page: Page, router_url: str) -> None:
    body = {"model": "smollm2", "messages": [{"role": "user", "content": "Hi"}], "temperature": 5, "stream": True}
    answer = httpx.post(router_url + "/v1/chat/completions", json=body, timeout=60)
    assert answer.status_code == 400, answer.text
    expected = answer.json()["error"]["message"]
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60)
    page.fill("#chat-temperature", "5")
    page.find("#chat-input").send_keys("Hi", Keys.ENTER)
    page.wait(lambda: page.visible("#chat-error"), 60, "no error shown")
    assert expected in page.text("#chat-error")
    assert page.js("return document.querySelector('.message.assistant').dataset.outcome") == "failed"
    # The page stays usable: a valid request afterwards is answered.
    page.fill("#chat-temperature", "0")
    page.fill("#chat-max-tokens", "4")
    page.find("#chat-input").send_keys("Hi", Keys.ENTER)
    page.wait(lambda: page.js("return document.querySelectorAll('.message.assistant[data-outcome]').length") == 2, 180)
    assert not page.visible("#chat-error")


def test_an_invalid_schema_is_caught_before_sending(page: Page, router_url: str) -> None:
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model").get("smollm2"), 60)
    page.find('input[name="chat-mode"][value="json_schema"]').click()
    page.fill("#chat-schema", "{not json")
    page.find("#chat-input").send_keys("Hi", Keys.ENTER)
    page.wait(lambda: page.visible("#chat-error"), 10)
    assert "The JSON schema is not valid JSON" in page.text("#chat-error")
    assert not page.find_all(".message")
