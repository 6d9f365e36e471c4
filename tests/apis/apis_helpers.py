"""Checks the tests/apis tests share: an answer is an error in the API's own shape, saying what was
wrong without leaking paths or traces."""

from __future__ import annotations

from typing import Any

import httpx

# What an error message must never contain: filesystem locations and Python internals.
LEAK_MARKERS = ("/work", "/tmp", "/root", "/home", "/usr", "site-packages", "Traceback", 'File "')


def _clean(response: httpx.Response, status: int) -> Any:
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    for marker in LEAK_MARKERS:
        assert marker not in response.text, f"error answer leaks {marker!r}: {response.text[:500]}"
    return response.json()


def openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """OpenAI's body: `{"error": {"message", "type", "param", "code"}}`."""
    body = _clean(response, status)
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"], body
    return dict(body["error"])


def anthropic_error(response: httpx.Response, status: int) -> dict[str, Any]:
    """Anthropic's body: `{"type": "error", "error": {"type", "message"}, "request_id"}`."""
    body = _clean(response, status)
    assert body["type"] == "error" and set(body) <= {"type", "error", "request_id"}, body
    assert set(body["error"]) == {"type", "message"} and body["error"]["message"], body
    return dict(body["error"])
