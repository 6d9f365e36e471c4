"""The router knows which service serves which model: it turns away a JSON request naming a model
of another kind before forwarding it, lists and retrieves every servable model, and offers the
operator API (`nexa ps`, `nexa load`, `nexa unload`) over every service."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
from conftest import TIMEOUT
from support import router_spec, start_ready

from nexa_cli.supervisor import Supervisor


def nexa(*args: str, url: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nexa_cli", *args, "--url", url], capture_output=True, text=True,
                          timeout=600, env={**os.environ})  # fmt: skip


def test_a_model_of_another_kind_is_refused_before_forwarding(pool_supervisor: Supervisor) -> None:
    # No text service at all: a forwarded request would be a 503; the router answers from what it knows.
    url = start_ready(pool_supervisor, router_spec({}, name="router-no-services"))
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        wrong = client.post("/v1/chat/completions", json={"model": "whisper-tiny.en", "messages": [{"role": "user",
                            "content": "hi"}]})  # fmt: skip
        assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "model_wrong_route"
        assert "/v1/audio/transcriptions" in wrong.json()["error"]["message"]
        image = client.post("/v1/txt2img", json={"model": "smollm2", "prompt": "x"})
        assert image.status_code == 400 and "/v1/chat/completions" in image.json()["error"]["message"]
        right = client.post("/v1/chat/completions", json={"model": "smollm2", "messages": [{"role": "user",
                            "content": "hi"}]})  # fmt: skip
        assert right.status_code == 503 and right.json()["error"]["code"] == "modality_not_configured"


def test_the_operator_api_and_its_commands(pool_router: str) -> None:
    loaded = nexa("load", "gemma3-270m", "--keep-alive", "10m", url=pool_router)
    assert loaded.returncode == 0, loaded.stderr
    assert "gemma3-270m is loaded" in loaded.stdout
    ps = nexa("ps", url=pool_router)
    assert ps.returncode == 0, ps.stderr
    header, *rows = ps.stdout.splitlines()
    assert header.split()[:4] == ["NAME", "MODALITY", "STATE", "MEMORY"]
    (row,) = [r for r in rows if r.startswith("gemma3-270m")]
    assert row.split()[1:3] == ["text", "loaded"] and "MiB" in row and "min" in row  # it unloads in ~10 min
    with httpx.Client(base_url=pool_router, timeout=TIMEOUT) as client:
        listed = {m["id"]: m for m in client.get("/v1/operator/models").json()["data"]}
        assert listed["gemma3-270m"]["memory_bytes"] > 200 * 2**20  # its 253 MB file, at least
        assert listed["gemma3-270m"]["keep_alive_s"] == 600 and listed["gemma3-270m"]["modality"] == "text"
    unloaded = nexa("unload", "gemma3-270m", url=pool_router)
    assert unloaded.returncode == 0 and "unloaded" in unloaded.stdout
    assert "gemma3-270m" not in nexa("ps", url=pool_router).stdout
    missing = nexa("load", "no-such-model", url=pool_router)
    assert missing.returncode == 2 and "not served here" in missing.stderr


@pytest.mark.parametrize("path", ["/v1/operator/models", "/v1/models/smollm2"])
def test_model_routes_answer_unknown_models_in_the_error_body(pool_router: str, path: str) -> None:
    with httpx.Client(base_url=pool_router, timeout=TIMEOUT) as client:
        assert client.get(path).status_code == 200
        gone = client.get("/v1/models/nope")
        assert gone.status_code == 404 and gone.json()["error"]["code"] == "model_not_found"
        bad = client.post("/v1/operator/models/load", json={"model": "smollm2", "keep_alive": "soon"})
        assert bad.status_code == 400 and bad.json()["error"]["param"] == "keep_alive"
