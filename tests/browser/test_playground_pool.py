"""The Models tab and the chat picker on a text service hosting two real models (SmolLM2, the
default, and Gemma 3 270M) with room for one at a time, as `nexa server smollm2 gemma3-270m` runs
them: the page shows each model's state and memory, loads, pins and unloads through the operator API
(the service's own list agrees), shows the operator's refusal as its message, and chats with the
second model."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_helpers import WATCH_ANSWER, Page, ask, last_answer
from support import router_spec, service_spec, start_ready

from nexa_cli.supervisor import Supervisor

SECOND = "gemma3-270m"
TIMEOUT = httpx.Timeout(300.0, connect=5.0)
# A model's row in the Models tab: its state, memory and buttons, as the page shows them.
ROW = """
const row = document.querySelector(`#models-table tbody tr[data-model="${arguments[0]}"]`);
if (!row) return null;
const memory = row.querySelector('.memory');
return {state: row.dataset.state, modality: row.cells[1].textContent, memoryText: row.cells[4].textContent,
        memoryBytes: memory ? Number(memory.dataset.bytes) : null,
        actions: [...row.querySelectorAll('button[data-action]')].map(b => b.dataset.action),
        labels: [...row.querySelectorAll('button[data-action]')].map(b => b.textContent),
        settled: document.getElementById('models-table').getAttribute('aria-busy') === 'false'};
"""


@pytest.fixture(scope="module")
def pool_services(tmp_path_factory: pytest.TempPathFactory, nexa_cache: Path) -> Iterator[tuple[str, str]]:
    """(router URL, text service URL): the text service with smollm2 and gemma3-270m, at most one
    loaded, idle models kept (so states change only by what the tests do), and a router in front."""
    subprocess.run([sys.executable, "-m", "nexa_cli", "pull", SECOND], check=True, capture_output=True, timeout=600,
                   env={**os.environ, "NEXA_CACHE": str(nexa_cache)})  # fmt: skip
    env = {
        "NEXA_TEXT_MODEL": "smollm2",
        "NEXA_TEXT_MODELS": SECOND,
        "NEXA_TEXT_MAX_LOADED_MODELS": "1",
        "NEXA_TEXT_KEEP_ALIVE": "-1",
        "NEXA_TEXT_THREADS": "1",
    }
    with Supervisor(tmp_path_factory.mktemp("pool-browser-logs")) as supervisor:
        text = start_ready(supervisor, service_spec("text", env, name="text-two-models-browser"))
        router = start_ready(supervisor, router_spec({"text": text}, name="router-two-models-browser"))
        yield router, text


@pytest.fixture
def router(pool_services: tuple[str, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=pool_services[0], timeout=TIMEOUT) as client:
        yield client


def service_loaded(text_url: str) -> dict[str, dict[str, Any]]:
    """The text service's own /v1/operator/models, by model."""
    data = httpx.get(f"{text_url}/v1/operator/models", timeout=30).json()["data"]
    return {m["id"]: m for m in data}


def only_smollm2_loaded(router: httpx.Client) -> None:
    """The starting point of each test: smollm2 loaded and unpinned (gemma3-270m then unloaded, for room)."""
    answer = router.post("/v1/operator/models/load", json={"model": "smollm2", "pin": False})
    assert answer.status_code == 200, answer.text


def page_bytes(n: int) -> str:
    """The page's way of writing a size (dom.js `bytes`)."""
    value, units = float(n), ["B", "KiB", "MiB", "GiB", "TiB"]
    unit = 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    return f"{value:.0f} {units[unit]}" if unit == 0 else f"{value:.1f} {units[unit]}"


def row(page: Page, model: str) -> dict[str, Any]:
    return page.js(ROW, model) or {}


def wait_row(page: Page, model: str, state: str, timeout: float = 120) -> dict[str, Any]:
    """Wait until the page shows `model` in `state`, with its lists settled (no request running)."""
    page.wait(lambda: (r := row(page, model)).get("state") == state and r["settled"], timeout,
              f"{model} never shown {state}: {row(page, model)}")  # fmt: skip
    return row(page, model)


def click(page: Page, model: str, action: str) -> None:
    page.find(f'#models-table tr[data-model="{model}"] button[data-action="{action}"]').click()


def open_models(page: Page, router_url: str) -> None:
    page.open(router_url, "models")
    page.wait(lambda: row(page, "smollm2") and row(page, SECOND), 60, "the two models are not listed")


def test_models_tab_shows_the_loaded_model_with_its_memory(
    page: Page, pool_services: tuple[str, str], router: httpx.Client
) -> None:
    router_url, text_url = pool_services
    only_smollm2_loaded(router)
    open_models(page, router_url)
    shown = wait_row(page, "smollm2", "loaded")
    measured = service_loaded(text_url)["smollm2"]["memory_bytes"]
    assert measured > 0
    assert shown["modality"] == "text" and shown["memoryBytes"] == measured
    assert shown["memoryText"] == page_bytes(measured), shown
    assert shown["actions"] == ["pin", "unload"] and shown["labels"] == ["Pin", "Unload"]
    second = wait_row(page, SECOND, "available")
    assert second["memoryText"] == "–" and second["actions"] == ["load", "pin"]
    assert second["labels"] == ["Load", "Load & pin"]
    # The "Loaded now" table: the operator's list, with the same memory.
    loaded_rows = page.js(
        "return [...document.querySelectorAll('#operator-table tbody tr[data-model]')].map(r =>"
        " [r.dataset.model, r.dataset.state, r.cells[3].textContent, r.cells[4].textContent])"
    )
    assert loaded_rows == [["smollm2", "loaded", page_bytes(measured), "no"]]


def test_unload_and_load_again_from_the_page(page: Page, pool_services: tuple[str, str], router: httpx.Client) -> None:
    router_url, text_url = pool_services
    only_smollm2_loaded(router)
    open_models(page, router_url)
    wait_row(page, "smollm2", "loaded")

    click(page, "smollm2", "unload")
    shown = wait_row(page, "smollm2", "available")
    assert shown["memoryText"] == "–" and shown["actions"] == ["load", "pin"]
    assert "smollm2" not in service_loaded(text_url), "the page says available but the service still holds it"
    assert router.get("/v1/models/smollm2").json()["state"] == "available"
    assert page.js("return document.querySelector('#operator-table tbody tr[data-model]')") is None

    click(page, "smollm2", "load")
    shown = wait_row(page, "smollm2", "loaded")
    held = service_loaded(text_url)
    assert held["smollm2"]["state"] == "loaded" and not held["smollm2"]["pinned"]
    assert shown["memoryBytes"] == held["smollm2"]["memory_bytes"] > 0
    assert not page.visible("#models-error")


def test_pin_and_the_operators_refusal_shown_as_its_message(
    page: Page, pool_services: tuple[str, str], router: httpx.Client
) -> None:
    router_url, text_url = pool_services
    only_smollm2_loaded(router)
    try:
        open_models(page, router_url)
        wait_row(page, "smollm2", "loaded")
        click(page, "smollm2", "pin")
        page.wait(lambda: row(page, "smollm2").get("actions") == ["unpin", "unload"], 60, "never shown pinned")
        assert "pinned" in row(page, "smollm2")["memoryText"]
        assert service_loaded(text_url)["smollm2"]["pinned"] is True

        # One model at a time and that one pinned: the service refuses (507), and the page says why.
        click(page, SECOND, "load")
        page.wait(lambda: page.visible("#models-error"), 60, "the refusal was not shown")
        refusal = router.post("/v1/operator/models/load", json={"model": SECOND})
        assert refusal.status_code == 507, refusal.text
        message = refusal.json()["error"]["message"]
        assert page.text("#models-error") == f"{message} (HTTP 507, model_too_large)"
        assert wait_row(page, SECOND, "available")["actions"] == ["load", "pin"]
        assert SECOND not in service_loaded(text_url)

        click(page, "smollm2", "unpin")
        page.wait(lambda: row(page, "smollm2").get("actions") == ["pin", "unload"], 60, "never shown unpinned")
        assert service_loaded(text_url)["smollm2"]["pinned"] is False
        assert not page.visible("#models-error"), "the next action should clear the old refusal"
    finally:
        only_smollm2_loaded(router)


def test_chat_answers_from_the_second_text_model(
    page: Page, pool_services: tuple[str, str], router: httpx.Client
) -> None:
    router_url, text_url = pool_services
    only_smollm2_loaded(router)
    page.open(router_url)
    page.wait(lambda: page.options("#chat-model").get(SECOND), 60, f"{SECOND} not offered in the picker")
    labels = lambda: page.js(  # noqa: E731
        "return Object.fromEntries([...document.querySelectorAll('#chat-model option')]"
        ".filter(o => ['smollm2', arguments[0]].includes(o.value)).map(o => [o.value, o.textContent]))",
        SECOND,
    )
    # The picker shows each model's state, and starts on the one that is loaded.
    assert labels() == {"smollm2": "smollm2 · loaded", SECOND: f"{SECOND} · available"}
    assert page.find("#chat-model").get_attribute("value") == "smollm2"

    page.choose("#chat-model", SECOND)
    page.js(WATCH_ANSWER)
    ask(page, "List the planets of the solar system, one per line.", max_tokens=64, temperature="0")
    page.wait(lambda: (last_answer(page) or {}).get("outcome"), 300, "the answer never finished")
    answer = last_answer(page)
    assert answer["outcome"] == "done", answer
    # The response's `model` names the second model, and the page shows who answered.
    assert answer["model"] == SECOND
    assert page.js("return document.querySelector('.message.assistant .role').textContent") == f"assistant · {SECOND}"
    assert answer["text"] and answer["text"].strip()
    growth = page.js("return window.__growth")
    lengths = sorted({length for _, length, outcome in growth if outcome is None and length > 0})
    assert len(lengths) >= 2, f"the answer did not grow while streaming: {growth}"

    # It was loaded for the answer, and smollm2 unloaded to make room: the picker re-read says so.
    page.wait(lambda: labels() == {"smollm2": "smollm2 · available", SECOND: f"{SECOND} · loaded"}, 30,
              f"the picker did not follow the new states: {labels()}")  # fmt: skip
    assert set(service_loaded(text_url)) == {SECOND}
    assert page.find("#chat-model").get_attribute("value") == SECOND
