"""What the reliability tests share: the check that an answer is a clean OpenAI error, process
memory, metrics, and the summary lines the tests record (printed at the end of the run)."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterable
from typing import Any

import httpx
import psutil

# What an error message must never contain: filesystem locations and Python internals.
LEAK_MARKERS = ("/work", "/tmp", "/root", "/home", "/usr", "site-packages", "Traceback", 'File "')
ERROR_KEYS = {"message", "type", "param", "code"}
SUMMARY: list[str] = []
"""One line per load/fault test, shown in pytest's terminal summary (see conftest.py)."""


def assert_no_leak(text: str) -> None:
    for marker in LEAK_MARKERS:
        assert marker not in text, f"error answer leaks {marker!r}: {text[:500]}"


def error_of(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """Assert the answer is an error in OpenAI's body (with no path or trace in it); return the error."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.status_code >= 400, (response.status_code, response.text[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == ERROR_KEYS, body
    assert isinstance(error["message"], str) and error["message"], body
    assert isinstance(error["type"], str) and error["type"], body
    assert error["param"] is None or isinstance(error["param"], str), body
    assert error["code"] is None or isinstance(error["code"], str), body
    assert_no_leak(response.text)
    return error


def anthropic_error_of(response: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """Assert the answer is an error in Anthropic's body (the /v1/messages routes); return the error."""
    if status is not None:
        assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.status_code >= 400, (response.status_code, response.text[:500])
    assert response.headers.get("content-type", "").startswith("application/json"), response.headers
    body = response.json()
    assert isinstance(body, dict) and body.get("type") == "error" and set(body) <= {"type", "error", "request_id"}, body
    error = body["error"]
    assert isinstance(error, dict) and set(error) == {"type", "message"}, body
    assert isinstance(error["message"], str) and error["message"] and isinstance(error["type"], str), body
    assert_no_leak(response.text)
    return error


def shed(response: httpx.Response) -> bool:
    """A request turned away for load or unavailability, as clients are told to retry: 429/503 + Retry-After."""
    if response.status_code not in (429, 503):
        return False
    error_of(response)
    return int(response.headers.get("retry-after", "0")) >= 1


def metric(text: str, name: str, labels: str = "") -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    pattern = rf"^{re.escape(name)}{re.escape('{' + labels + '}') if labels else ''} (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(1)) if found else 0.0


def rss_mib(pids: Iterable[int]) -> dict[int, float]:
    """Resident memory of each process and its children, in MiB."""
    sizes = {}
    for pid in pids:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += child.memory_info().rss
        sizes[pid] = total / (1024 * 1024)
    return sizes


def tally(outcomes: Iterable[str]) -> str:
    counts = Counter(outcomes)
    return ", ".join(f"{kind}={n}" for kind, n in sorted(counts.items())) or "none"
