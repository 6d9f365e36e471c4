"""The Models tab against the real router: every model of /v1/models with what its card says."""

from __future__ import annotations

import httpx
from browser_helpers import Page


def test_models_tab_shows_every_card(page: Page, router_url: str) -> None:
    cards = httpx.get(router_url + "/v1/models", timeout=30).json()["data"]
    page.open(router_url, "models")
    page.wait(lambda: len(page.find_all("#models-table tbody tr[data-model]")) == len(cards), 30)
    rows = page.js(
        "return Object.fromEntries([...document.querySelectorAll('#models-table tbody tr[data-model]')].map(r =>"
        " [r.dataset.model, {cells: [...r.cells].map(c => c.textContent),"
        "  caps: [...r.querySelectorAll('.caps span')].map(s => s.textContent)}]))"
    )
    for card in cards:
        row = rows[card["id"]]
        assert row["cells"][1] == card["modality"] and row["cells"][2] == card["backend"]
        assert row["cells"][3] == card.get("state", "not reported")
        if "capabilities" in card:
            assert row["caps"] == card["capabilities"]
        else:
            assert row["caps"], f"no capabilities inferred for {card['id']}"
    # Refresh re-reads the list (and keeps the page whole).
    page.find("#models-refresh").click()
    page.wait(lambda: len(page.find_all("#models-table tbody tr[data-model]")) == len(cards), 30)
    assert not page.visible("#models-error")
