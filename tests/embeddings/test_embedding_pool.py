"""The embedding model as one more model of the text service's pool, beside a chat model (as
`nexa server smollm2 all-minilm-l6-v2` runs it): loaded on its first request, not before; the
default of requests without `model`; unloaded by the operator or its `keep_alive`, which frees its
memory and its batcher; loaded again by the next request."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from support import service_spec

from nexa_cli.supervisor import Supervisor

MODEL = "all-minilm-l6-v2"
MIB = 1024 * 1024
TIMEOUT = httpx.Timeout(180.0, connect=5.0)
LONG = "The quick brown fox jumps over the lazy dog. " * 30  # 256 tokens once cut: a full-width batch


def rss(pid: int) -> int:
    """The service's resident memory once it stops moving (the allocator takes a moment to trim)."""
    process = psutil.Process(pid)
    last = process.memory_info().rss
    for _ in range(50):
        time.sleep(0.2)
        now = process.memory_info().rss
        if abs(now - last) < 2 * MIB:
            return now
        last = now
    return last


def loaded_gauge(client: httpx.Client, model: str) -> float:
    page = client.get("/metrics").text
    match = re.search(rf'^nexa_text_model_loaded\{{model="{re.escape(model)}"\}} (\S+)$', page, re.M)
    return float(match.group(1)) if match else 0.0


def card(client: httpx.Client, model: str) -> dict[str, object]:
    return next(c for c in client.get("/v1/models").json()["data"] if c["id"] == model)  # type: ignore[no-any-return]


def operator_ids(client: httpx.Client) -> list[str]:
    return [m["id"] for m in client.get("/v1/operator/models").json()["data"]]


@pytest.fixture(scope="module")
def pooled(tmp_path_factory: pytest.TempPathFactory, embedding_model: Path) -> Iterator[tuple[httpx.Client, int]]:
    """A fresh text service of its own (no other test has touched its embedding model), truncating
    long inputs so a full-width batch can be sent."""
    env = {
        "NEXA_TEXT_MODEL": "smollm2",
        "NEXA_TEXT_MODELS": MODEL,
        "NEXA_TEXT_EMBEDDING_TRUNCATE": "true",
        "NEXA_TEXT_THREADS": "2",
    }
    spec = service_spec("text", env, name="text-embedding-pool")
    with Supervisor(tmp_path_factory.mktemp("embedding-pool-logs")) as supervisor:
        child = supervisor.start(spec)
        supervisor.wait_ready(child, 180)
        with httpx.Client(base_url=spec.url, timeout=TIMEOUT) as client:
            yield client, child.process.pid


def test_chat_and_embedding_models_in_one_pool_the_embedding_one_loaded_on_demand(
    pooled: tuple[httpx.Client, int],
) -> None:
    client, _ = pooled
    embedder = card(client, MODEL)
    assert embedder["state"] == "available"  # ready without it: /ready waits for the default only
    assert embedder["capabilities"] == ["embeddings"] and embedder["backend"] == "onnx-embedding"
    assert "chat" in card(client, "smollm2")["capabilities"]  # type: ignore[operator]
    assert operator_ids(client) == ["smollm2"]
    assert loaded_gauge(client, MODEL) == 0

    # No `model`: the first embedding model the service was started with.
    answer = client.post("/v1/embeddings", json={"input": ["A man is eating food.", LONG]})
    assert answer.status_code == 200, answer.text
    assert answer.json()["model"] == MODEL and len(answer.json()["data"]) == 2
    assert card(client, MODEL)["state"] == "loaded"
    listed = {m["id"]: m for m in client.get("/v1/operator/models").json()["data"]}
    assert set(listed) == {"smollm2", MODEL} and listed[MODEL]["memory_bytes"] > 0
    assert loaded_gauge(client, MODEL) == 1

    chat = client.post("/v1/chat/completions", json={"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
    assert chat.status_code == 200 and chat.json()["model"] == "smollm2"


def test_wrong_routes_name_the_right_one(pooled: tuple[httpx.Client, int]) -> None:
    client, _ = pooled
    on_chat = client.post("/v1/chat/completions", json={"model": MODEL, "messages": [{"role": "user", "content": "x"}]})
    assert on_chat.status_code == 400
    assert on_chat.json()["error"]["code"] == "model_wrong_route"
    assert on_chat.json()["error"]["message"] == f"'{MODEL}' is a text embedding model; use /v1/embeddings."
    on_embeddings = client.post("/v1/embeddings", json={"model": "smollm2", "input": "x"})
    assert on_embeddings.status_code == 400
    assert on_embeddings.json()["error"]["message"] == "'smollm2' is a text chat model; use /v1/chat/completions."


def test_unloading_frees_its_memory_and_batcher_and_the_next_request_loads_it_again(
    pooled: tuple[httpx.Client, int],
) -> None:
    client, pid = pooled
    client.post("/v1/operator/models/unload", json={"model": MODEL})
    figures = []
    for _ in range(2):
        before = rss(pid)
        assert client.post("/v1/embeddings", json={"model": MODEL, "input": [LONG] * 32}).status_code == 200
        loaded = rss(pid)
        unloaded = client.post("/v1/operator/models/unload", json={"model": MODEL})
        assert unloaded.status_code == 200 and unloaded.json()["state"] == "available"
        after = rss(pid)
        figures.append((before, loaded, after))
        assert MODEL not in operator_ids(client)
        assert loaded_gauge(client, MODEL) == 0 and card(client, MODEL)["state"] == "available"
    report = "; ".join(f"before {b / MIB:.0f} MiB, loaded {m / MIB:.0f} MiB, unloaded {a / MIB:.0f} MiB"
                       for b, m, a in figures)  # fmt: skip
    print(f"\n{MODEL} in the text service, RSS per cycle: {report}")
    # Every unload comes back to what the service held before the first load: measured against each
    # cycle's own start instead, one cycle's dip (490 -> 465 MiB) made the next cycle's ordinary
    # +48 MiB look like a leak.
    baseline = figures[0][0]
    for before, loaded, after in figures:
        assert loaded - before > 50 * MIB, "the model and its batch arena did take memory while loaded"
        assert after - baseline <= max(0.10 * baseline, 40 * MIB), report
    again = client.post("/v1/embeddings", json={"model": MODEL, "input": "hello", "encoding_format": "float"})
    assert again.status_code == 200 and len(again.json()["data"][0]["embedding"]) == 384
    assert card(client, MODEL)["state"] == "loaded"


def test_keep_alive_zero_unloads_it_right_after_the_request(pooled: tuple[httpx.Client, int]) -> None:
    client, _ = pooled
    answer = client.post("/v1/embeddings", json={"model": MODEL, "input": "hello", "keep_alive": 0})
    assert answer.status_code == 200
    assert "X-Nexa-Ignored-Fields" not in answer.headers  # keep_alive is honoured
    deadline = time.monotonic() + 15
    while MODEL in operator_ids(client) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert MODEL not in operator_ids(client)
    assert card(client, "smollm2")["state"] == "loaded"  # the chat model stays


def test_without_an_embedding_model_configured_no_model_is_a_404_saying_what_to_do(text_url: str) -> None:
    """The shared service serves SmolLM2 only (the pool's answer for any capability it has no model of)."""
    answer = httpx.post(text_url + "/v1/embeddings", json={"input": "hello"}, timeout=TIMEOUT)
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "model_not_found" and error["param"] == "model"
    assert "started with no embeddings model" in error["message"] and "NEXA_TEXT_MODELS" in error["message"]
