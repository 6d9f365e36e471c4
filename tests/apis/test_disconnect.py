"""A client that leaves a Responses or Messages answer early stops the generation: the router closes
its chat stream to the text service, which counts the request as disconnected and frees the model.
Both for a stream the client stops reading, and for a plain answer the client stops waiting for."""

from __future__ import annotations

import re
import time
from typing import Any

import httpx
import pytest

# SmolLM2 writes this to the 1000-token limit (about 12 s on one idle core).
LONG = [{"role": "user", "content": "Write a very long story about a dragon, with many chapters."}]
BODIES: dict[str, tuple[str, dict[str, Any], str]] = {
    # api: (path, body, what a text delta line of its stream holds)
    "responses": ("/v1/responses", {"input": LONG, "max_output_tokens": 1000, "temperature": 0},
                  '"type": "response.output_text.delta"'),
    "messages": ("/v1/messages", {"model": "smollm2", "messages": LONG, "max_tokens": 1000, "temperature": 0},
                 '"type": "text_delta"'),
}  # fmt: skip


def _series(text_url: str, name: str, labels: str = "") -> float:
    """The sum of a metric's samples whose labels include `labels` (`a="b"`, comma-separated)."""
    page = httpx.get(f"{text_url}/metrics", timeout=10).text
    total = 0.0
    for series, value in re.findall(rf"^{re.escape(name)}(?:{{([^}}]*)}})? (\S+)$", page, re.M):
        if all(part in series.split(",") for part in labels.split(",") if part):
            total += float(value)
    return total


def _disconnected(text_url: str) -> float:
    return _series(text_url, "nexa_text_requests_total", 'endpoint="chat",outcome="disconnected"')


def _settles(text_url: str, before: float) -> None:
    """The text service counts one more disconnected chat, and then runs nothing (bounded waits)."""
    deadline = time.monotonic() + 30
    while _disconnected(text_url) < before + 1:
        assert time.monotonic() < deadline, "the text service never saw the client leave"
        time.sleep(0.2)
    deadline = time.monotonic() + 10
    while _series(text_url, "nexa_text_running_sequences") > 0:
        assert time.monotonic() < deadline, "the text service kept generating after the client left"
        time.sleep(0.2)


@pytest.mark.parametrize("api", list(BODIES))
def test_leaving_a_stream_stops_the_generation(apis_url: str, text_url: str, api: str) -> None:
    path, body, delta = BODIES[api]
    before = _disconnected(text_url)
    deltas = 0
    with (
        httpx.Client(base_url=apis_url, timeout=180) as client,
        client.stream("POST", path, json={**body, "stream": True}) as response,
    ):
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            deltas += delta in line
            if deltas == 3:
                break  # leaving the block closes the connection mid-answer
    assert deltas == 3
    _settles(text_url, before)


@pytest.mark.parametrize("api", list(BODIES))
def test_giving_up_on_a_plain_answer_stops_the_generation(apis_url: str, text_url: str, api: str) -> None:
    path, body, _ = BODIES[api]
    before = _disconnected(text_url)
    tokens_before = _series(text_url, "nexa_text_tokens_generated_total")
    with (
        httpx.Client(base_url=apis_url, timeout=httpx.Timeout(180, read=3)) as client,
        pytest.raises(httpx.ReadTimeout),
    ):
        client.post(path, json=body)
    _settles(text_url, before)
    # Fewer than the 1000 tokens the answer would have taken: it was abandoned, not finished.
    assert _series(text_url, "nexa_text_tokens_generated_total") - tokens_before < 1000
