"""GGUF and ONNX text models side by side in one text service, each on its own engine: a request
picks one by name, and each answers what its engine can do."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support import service_spec

from nexa_cli.supervisor import Supervisor

TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.fixture(scope="module")
def mixed(onnx_model: Path, nexa_cache: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    env = {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_MODELS": "smollm2-onnx", "NEXA_TEXT_MAX_LOADED_MODELS": "2"}
    spec = service_spec("text", env, name="text-gguf-and-onnx")
    with Supervisor(tmp_path_factory.mktemp("mixed-logs")) as supervisor:
        supervisor.wait_ready(supervisor.start(spec), 180)
        with httpx.Client(base_url=spec.url, timeout=300) as client:
            yield client


def test_both_backends_serve_side_by_side(mixed: httpx.Client) -> None:
    for model in ("smollm2-onnx", "smollm2", "smollm2-onnx"):
        body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}], "max_tokens": 8}
        answer = mixed.post("/v1/chat/completions", json=body)
        assert answer.status_code == 200 and answer.json()["model"] == model, answer.text
    cards = {c["id"]: c for c in mixed.get("/v1/models").json()["data"]}
    assert (cards["smollm2"]["backend"], cards["smollm2-onnx"]["backend"]) == ("gguf", "onnx")
    assert cards["smollm2"]["state"] == cards["smollm2-onnx"]["state"] == "loaded"  # room for both
    assert "tools" in cards["smollm2"]["capabilities"] and "tools" not in cards["smollm2-onnx"]["capabilities"]


def test_each_model_answers_what_its_engine_can_do(mixed: httpx.Client) -> None:
    messages = [{"role": "user", "content": "Call f."}]
    gguf = mixed.post("/v1/chat/completions", json={"model": "smollm2", "messages": messages, "tools": [TOOL],
                                                     "tool_choice": "required", "max_tokens": 16})  # fmt: skip
    assert gguf.status_code == 200 and gguf.json()["choices"][0]["message"]["tool_calls"]
    onnx = mixed.post("/v1/chat/completions", json={"model": "smollm2-onnx", "messages": messages, "tools": [TOOL]})
    assert onnx.status_code == 400 and onnx.json()["error"]["code"] == "unsupported_by_backend"
