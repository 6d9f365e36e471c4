"""What the tests/apis tests share (imported by name: `conftest` is ambiguous when several test
folders run together): checks that an answer is an error in the API's own shape, saying what was
wrong without leaking paths or traces; skipping for a missing system tool."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from nexa_cli.supervisor import Child

StartRouter = Callable[..., tuple[str, Child]]
"""The `start_router` fixture: (name, NEXA_ROUTER_* env) -> (url, child)."""
CLI_OUTCOMES: list[str] = []
"""What Codex CLI and Claude Code did (test_agent_clis.py), shown at the end of the run."""


def need(what: str, how: str) -> None:
    """Skip for a missing system tool on a developer machine; CI (CI=true) installs them, so fail there."""
    message = f"{what} is not installed ({how})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


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
