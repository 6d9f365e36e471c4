"""Chat in the browser against the real router and text service (SmolLM2): the answer streams in,
Stop really stops the generation on the server, and tool / JSON-schema modes work."""

from __future__ import annotations

import json
import re
import time

import httpx
from browser_helpers import WATCH_ANSWER, Page, ask, last_answer, open_chat, sample, wait_until
from selenium.webdriver.common.keys import Keys

STATS = re.compile(r"first token \d+(\.\d+)? s · ≈?\d+(\.\d+)? tokens/s · ≈?\d+ tokens · ")


def text_metrics(text_url: str) -> str:
    return httpx.get(f"{text_url}/metrics", timeout=10).text


def test_model_picker_lists_every_model_with_its_modality(page: Page, router_url: str) -> None:
    open_chat(page, router_url)
    options = page.options("#chat-model")
    # Audio and image models are listed (their group says the modality) but cannot be picked.
    assert options["smollm2"] is True
    assert options["whisper-tiny.en"] is False and options["tiny-sd"] is False
    groups = page.js("return [...document.querySelectorAll('#chat-model optgroup')].map(g => g.label)")
    assert set(groups) >= {"text", "audio", "image"}
    labels = page.js("return [...document.querySelectorAll('#chat-model option')].map(o => o.textContent)")
    assert any("whisper-tiny.en" in label and "Audio tab" in label for label in labels)


def test_answer_streams_into_the_page(page: Page, router_url: str) -> None:
    open_chat(page, router_url)
    page.js(WATCH_ANSWER)
    page.fill("#chat-system", "You are a storyteller.")
    ask(page, "Tell me a long story about a dragon and a lighthouse.", max_tokens=160)
    page.wait(lambda: (last_answer(page) or {}).get("outcome"), 300, "the answer never finished")
    answer = last_answer(page)
    assert answer["outcome"] == "done", answer
    growth = page.js("return window.__growth")
    before_end = [length for _, length, outcome in growth if outcome is None and length > 0]
    # The text was seen at many lengths before the answer ended: it arrived piece by piece.
    assert len(set(before_end)) >= 5, f"the text did not grow over time: {before_end}"
    first_seen = next(t for t, length, _ in growth if length > 0)
    finished = next(t for t, _, outcome in growth if outcome)
    assert finished - first_seen > 50, "the whole answer appeared at once"
    assert len(answer["text"]) > max(before_end[:1])
    assert STATS.search(answer["stats"]), answer["stats"]
    assert "finish: " in answer["stats"]
    # The conversation goes on with the history: the second request carries both earlier turns.
    ask(page, "Give it a title.", max_tokens=12)
    page.wait(lambda: page.js("return document.querySelectorAll('.message.assistant[data-outcome]').length") == 2, 180)
    assert page.js("return document.querySelectorAll('.message.user').length") == 2
    assert last_answer(page)["outcome"] == "done"


def test_stop_ends_the_stream_and_the_generation(page: Page, router_url: str, text_url: str) -> None:
    labels = {"endpoint": "chat", "outcome": "disconnected"}
    before = sample(text_metrics(text_url), "nexa_text_requests_total", labels)
    open_chat(page, router_url)
    ask(page, "Count from 1 to 1000, one number per line.", max_tokens=1500, temperature="0")
    # A few tokens in (the machine may be slow: the wait is long, the threshold small).
    page.wait(lambda: len((last_answer(page) or {}).get("text") or "") > 8, 180, "no text arrived")
    assert page.visible("#chat-stop") and not page.visible("#chat-send")
    page.find("#chat-stop").click()
    page.wait(lambda: last_answer(page)["outcome"], 10, "Stop did not end the stream")
    answer = last_answer(page)
    assert answer["outcome"] == "stopped" and "stopped" in answer["stats"], answer
    assert page.visible("#chat-send") and not page.visible("#chat-stop")
    time.sleep(1.0)
    assert last_answer(page)["text"] == answer["text"], "text kept arriving after Stop"
    # The server saw the client go and stopped generating: the sequence ended as disconnected.
    ended = wait_until(lambda: sample(text_metrics(text_url), "nexa_text_requests_total", labels) > before, 15)
    assert ended, "the text service never recorded the stream as disconnected"
    metrics = text_metrics(text_url)
    assert sample(metrics, "nexa_text_requests_total", labels) == before + 1
    assert wait_until(lambda: sample(text_metrics(text_url), "nexa_text_running_sequences", {}) == 0, 10) is not None
    assert not page.find_all("#chat-error:not([hidden])")


def test_escape_stops_too(page: Page, router_url: str) -> None:
    open_chat(page, router_url)
    ask(page, "Count from 1 to 1000, one number per line.", max_tokens=1500, temperature="0")
    page.wait(lambda: len((last_answer(page) or {}).get("text") or "") > 4, 180, "no text arrived")
    page.find("#chat-input").send_keys(Keys.ESCAPE)
    page.wait(lambda: last_answer(page)["outcome"] == "stopped", 10, "Esc did not stop the stream")


def test_tool_mode_shows_the_call(page: Page, router_url: str) -> None:
    open_chat(page, router_url)
    page.find('input[name="chat-mode"][value="tools"]').click()
    assert page.visible("#chat-tools") and not page.visible("#chat-schema")
    page.choose("#chat-tool-choice", "required")
    ask(page, "What is the weather in Paris?", max_tokens=64, temperature="0")
    page.wait(lambda: (last_answer(page) or {}).get("outcome"), 180, "no answer")
    answer = last_answer(page)
    assert answer["outcome"] == "done", answer
    assert "Tool call get_weather" in answer["text"], answer
    assert "finish: tool_calls" in answer["stats"]
    arguments = page.js("return [...document.querySelectorAll('.message.assistant pre code')].pop().textContent")
    assert "city" in json.loads(arguments)


def test_json_schema_mode_answers_valid_json(page: Page, router_url: str) -> None:
    open_chat(page, router_url)
    page.find('input[name="chat-mode"][value="json_schema"]').click()
    ask(page, "Jason is 25 years old. Give his name and age.", max_tokens=48, temperature="0")
    page.wait(lambda: (last_answer(page) or {}).get("outcome"), 180, "no answer")
    assert last_answer(page)["outcome"] == "done"
    shown = page.js("return [...document.querySelectorAll('.message.assistant pre code')].pop().textContent")
    value = json.loads(shown)
    assert set(value) == {"name", "age"} and isinstance(value["age"], int)


def test_model_text_is_never_html(page: Page, router_url: str) -> None:
    """The Markdown renderer builds text nodes: markup in an answer shows as text, scripts never run."""
    open_chat(page, router_url)
    rendered = page.js(
        "return import('./playground/static/markdown.js').then(m => {"
        " const box = document.createElement('div');"
        " m.renderMarkdown(box, arguments[0]);"
        " return {html: box.innerHTML, imgs: box.querySelectorAll('img, script').length,"
        "         links: [...box.querySelectorAll('a')].map(a => a.getAttribute('href'))};"
        "});",
        '# Title\n\n<img src=x onerror="window.__pwned=1"> **bold** `code`\n\n'
        "```html\n<script>window.__pwned=2</script>\n```\n\n- [link](javascript:alert(1))\n- [ok](https://example.org)",
    )
    assert rendered["imgs"] == 0
    assert "&lt;img" in rendered["html"] and "&lt;script&gt;" in rendered["html"]
    assert "<strong>bold</strong>" in rendered["html"] and "<code>code</code>" in rendered["html"]
    assert rendered["links"] == ["https://example.org"]  # a javascript: link stays text
    assert page.js("return window.__pwned === undefined")
