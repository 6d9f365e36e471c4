"""`nexa ps`, `nexa load NAME` and `nexa unload NAME`: the operator API of a running server.

The server is `--url` (default `$NEXA_URL`, else http://127.0.0.1:8000); with API keys, the key
comes from `$NEXA_API_KEY`. Errors are the server's own messages.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx

from nexa_common.catalogue import ModelError

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = httpx.Timeout(600.0, connect=5.0)  # a load may take minutes; connecting may not


def server_url(given: str | None) -> str:
    return (given or os.environ.get("NEXA_URL") or DEFAULT_URL).rstrip("/")


def _request(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    key = os.environ.get("NEXA_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(base_url=url, timeout=TIMEOUT, headers=headers, trust_env=False) as client:
            response = client.request(method, path, json=body)
    except httpx.HTTPError as exc:
        raise ModelError(
            f"no nexa server answers at {url} ({type(exc).__name__}); start one with `nexa server`"
        ) from None
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if response.status_code >= 400:
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        raise ModelError(error.get("message") or f"the server answered HTTP {response.status_code}")
    return payload


def _size(n: int) -> str:
    return f"{n / 2**20:.0f} MiB" if n < 2**30 else f"{n / 2**30:.1f} GiB"


def _until(expires_at: float | None, pinned: bool) -> str:
    if pinned:
        return "pinned"
    if expires_at is None:
        return "forever"
    left = max(0, int(expires_at - time.time()))
    return f"{left // 60} min {left % 60} s" if left >= 60 else f"{left} s"


def ps(url: str | None) -> int:
    """The loaded models, one a line (as `ollama ps`)."""
    models = _request(server_url(url), "GET", "/v1/operator/models")["data"]
    rows = [("NAME", "MODALITY", "STATE", "MEMORY", "ACTIVE", "QUEUED", "UNLOADS IN")]
    for m in models:
        rows.append((m["id"], m["modality"], m["state"], _size(m["memory_bytes"]), str(m["active"]), str(m["queued"]),
                     _until(m["expires_at"], m["pinned"])))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    if not models:
        print("(no model is loaded; a request, or `nexa load NAME`, loads one)")
    return 0


def load(url: str | None, name: str, pin: bool, keep_alive: str | None) -> int:
    body: dict[str, Any] = {"model": name, "pin": pin or None}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    model = _request(server_url(url), "POST", "/v1/operator/models/load", body)
    print(
        f"{model['id']} is loaded ({_size(model['memory_bytes'])}, unloads: {_until(model['expires_at'], model['pinned'])})"
    )
    return 0


def unload(url: str | None, name: str) -> int:
    answer = _request(server_url(url), "POST", "/v1/operator/models/unload", {"model": name})
    if answer.get("unloading"):
        print(f"{answer['id']} is busy; it unloads as soon as its requests are done")
    else:
        print(f"{answer['id']} is unloaded")
    return 0
