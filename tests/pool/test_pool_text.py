"""Many text models in one service, on the real models: each request is answered by the model it
names, one at a time in memory; a model being used is never unloaded under its requests; requests
for a model being loaded share one load; and every way of naming a model wrongly says what to do."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import openai
import pytest
from pool_helpers import TIMEOUT, metric, pull
from support import service_spec, start_ready

from nexa_cli.supervisor import Supervisor

CHAT = "/v1/chat/completions"


def chat(model: str, content: str = "Say hello.", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 8, "temperature": 0,
            **extra}  # fmt: skip


def loaded(client: httpx.Client) -> dict[str, dict[str, object]]:
    return {m["id"]: m for m in client.get("/v1/operator/models").json()["data"]}


async def streaming(stream: httpx.Response) -> AsyncIterator[str]:
    """The stream's lines, once its first chunk has arrived (the model is loaded and generating)."""
    lines = stream.aiter_lines()
    async for line in lines:
        if line.startswith("data: {"):
            break
    return lines


def sse_models(body: str) -> set[str]:
    return {json.loads(line[6:])["model"] for line in body.splitlines() if line.startswith("data: {")}


def test_alternating_requests_are_each_answered_by_the_model_they_name(text: httpx.Client) -> None:
    before = metric(text.get("/metrics").text, "nexa_text_model_evictions_total")
    for round_ in range(2):
        for model in ("gemma3-270m", "smollm2"):
            whole = text.post(CHAT, json=chat(model))
            assert whole.status_code == 200, whole.text
            assert whole.json()["model"] == model and whole.json()["choices"][0]["message"]["content"]
            streamed = text.post(CHAT, json=chat(model, stream=True))
            assert streamed.status_code == 200 and streamed.text.rstrip().endswith("data: [DONE]")
            assert sse_models(streamed.text) == {model}
            assert list(loaded(text)) == [model], f"round {round_}: only the model just used is loaded"
    evictions = metric(text.get("/metrics").text, "nexa_text_model_evictions_total", reason="room") - before
    assert evictions >= 3  # every switch unloaded the other model to make room


async def test_a_stream_on_one_model_is_never_cut_by_a_request_for_the_other(two_models: str) -> None:
    async with httpx.AsyncClient(base_url=two_models, timeout=TIMEOUT) as client:
        assert (await client.post(CHAT, json=chat("smollm2"))).status_code == 200  # smollm2 is the one loaded
        events: list[str] = []
        body = chat("smollm2", "Count from one to fifty.", stream=True, max_tokens=120)
        async with client.stream("POST", CHAT, json=body) as stream:
            lines = await streaming(stream)
            other = asyncio.ensure_future(client.post(CHAT, json=chat("gemma3-270m")))
            for _ in range(200):  # until it waits for room (bounded)
                page = (await client.get("/metrics")).text
                if metric(page, "nexa_text_model_load_waiting", model="gemma3-270m") >= 1:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail("the request for the other model never waited for room")
            async for line in lines:
                events.append(line)
            assert not other.done() or other.result().status_code == 200
        chunks = [json.loads(line[6:]) for line in events if line.startswith("data: {")]
        assert events[-2:] == ["data: [DONE]", ""] or events[-1] == "data: [DONE]"
        assert chunks[-1]["choices"][0]["finish_reason"] in ("stop", "length")  # it ran to its own end
        answer = await asyncio.wait_for(other, 300)
    assert answer.status_code == 200 and answer.json()["model"] == "gemma3-270m"


async def test_eight_first_requests_for_an_unloaded_model_share_one_load(two_models: str) -> None:
    async with httpx.AsyncClient(
        base_url=two_models, timeout=TIMEOUT, limits=httpx.Limits(max_connections=16)
    ) as client:
        assert (await client.post(CHAT, json=chat("smollm2"))).status_code == 200  # gemma is not loaded
        loads_before = metric(
            (await client.get("/metrics")).text, "nexa_text_model_load_seconds_count", model="gemma3-270m"
        )
        answers = await asyncio.gather(*(client.post(CHAT, json=chat("gemma3-270m", f"Say {n}.")) for n in range(8)))
        loads = metric((await client.get("/metrics")).text, "nexa_text_model_load_seconds_count", model="gemma3-270m")
    assert [a.status_code for a in answers] == [200] * 8, [a.text for a in answers if a.status_code != 200]
    assert {a.json()["model"] for a in answers} == {"gemma3-270m"}
    assert loads - loads_before == 1


def test_unknown_wrong_route_and_unpulled_models_say_what_to_do(text: httpx.Client, pool_router: str) -> None:
    unknown = text.post(CHAT, json=chat("gpt-imaginary"))
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert "smollm2" in unknown.json()["error"]["message"] and "gemma3-270m" in unknown.json()["error"]["message"]
    for client in (text, httpx.Client(base_url=pool_router, timeout=TIMEOUT)):
        wrong = client.post(CHAT, json=chat("whisper-tiny.en"))
        assert wrong.status_code == 400, wrong.text
        assert wrong.json()["error"]["code"] == "model_wrong_route"
        assert (
            "audio" in wrong.json()["error"]["message"]
            and "/v1/audio/transcriptions" in wrong.json()["error"]["message"]
        )
    hub = text.post(CHAT, json=chat("gemma"))  # the original nexa server's Gemma 2, from the hub
    assert hub.status_code == 404 and hub.json()["error"]["code"] == "model_not_pulled"
    assert "nexa pull gemma" in hub.json()["error"]["message"]
    for path in ("/etc/passwd", "../smollm2", str(Path.home())):  # a request never names a file
        assert text.post(CHAT, json=chat(path)).status_code == 404


def test_the_openai_client_lists_and_retrieves_models(pool_router: str) -> None:
    client = openai.OpenAI(base_url=pool_router + "/v1", api_key="x", max_retries=0)
    cards = {m.id: m for m in client.models.list()}
    assert {"smollm2", "gemma3-270m"} <= set(cards)
    gemma = client.models.retrieve("gemma3-270m")
    extra = gemma.model_extra or {}
    assert extra["modality"] == "text" and extra["backend"] == "gguf" and "chat" in extra["capabilities"]
    assert extra["state"] in ("loaded", "available")
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")


def test_keep_alive_zero_unloads_right_after_the_request_and_pinned_models_stay(text: httpx.Client) -> None:
    answer = text.post(CHAT, json=chat("gemma3-270m", keep_alive=0))
    assert answer.status_code == 200, answer.text
    for _ in range(100):
        if "gemma3-270m" not in loaded(text):
            break
        time.sleep(0.05)
    assert "gemma3-270m" not in loaded(text)
    pinned = text.post("/v1/operator/models/load", json={"model": "smollm2", "pin": True})
    assert pinned.status_code == 200 and pinned.json()["pinned"] is True
    # With room for one model and that one pinned, another can never be loaded: said at once.
    refused = text.post(CHAT, json=chat("gemma3-270m"))
    assert refused.status_code == 507 and refused.json()["error"]["code"] == "model_too_large", refused.text
    assert text.post("/v1/operator/models/unload", json={"model": "smollm2"}).json()["state"] == "available"
    assert text.post(CHAT, json=chat("gemma3-270m")).status_code == 200


def test_a_model_that_can_never_fit_is_refused_at_once_with_the_numbers(
    pool_supervisor: Supervisor, gemma: Path
) -> None:
    env = {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_MODELS": "gemma3-270m", "NEXA_TEXT_MEMORY_BUDGET_MB": "360"}
    url = start_ready(pool_supervisor, service_spec("text", env, name="text-small-budget"))
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        refused = client.post(CHAT, json=chat("gemma3-270m"))
        assert refused.status_code == 507, refused.text
        message = refused.json()["error"]["message"]
        assert "gemma3-270m" in message and "360 MiB" in message and "MiB" in message.split("needs about")[1]
        assert client.post(CHAT, json=chat("smollm2")).status_code == 200


def test_a_model_pulled_while_the_server_runs_is_servable_without_a_restart(
    pool_supervisor: Supervisor, tmp_path: Path
) -> None:
    cache = tmp_path / "fresh-cache"
    env = {"NEXA_TEXT_MODEL": "smollm2", "NEXA_TEXT_ALLOW_ANY_INSTALLED": "true", "NEXA_TEXT_CACHE_DIR": str(cache)}
    url = start_ready(pool_supervisor, service_spec("text", env, name="text-fresh-cache"))
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        before = client.post(CHAT, json=chat("gemma3-270m"))
        assert before.status_code == 404 and before.json()["error"]["code"] == "model_not_pulled"
        assert "nexa pull gemma3-270m" in before.json()["error"]["message"]
        assert "gemma3-270m" not in [m["id"] for m in client.get("/v1/models").json()["data"]]
        pull("gemma3-270m", cache)
        assert "gemma3-270m" in [m["id"] for m in client.get("/v1/models").json()["data"]]
        after = client.post(CHAT, json=chat("gemma3-270m"))
        assert after.status_code == 200 and after.json()["model"] == "gemma3-270m"


def wait_unloaded(client: httpx.Client, model: str) -> None:
    for _ in range(200):  # bounded: ~10 s
        if model not in loaded(client):
            return
        time.sleep(0.05)
    pytest.fail(f"{model} was never unloaded")


async def test_an_unload_or_keep_alive_applies_to_one_load_only(two_models: str) -> None:
    """An unload asked for while the model is busy happens when its request ends, and a request's
    `keep_alive: 0` unloads right after it; neither follows the model into its next load."""
    async with httpx.AsyncClient(base_url=two_models, timeout=TIMEOUT) as client:
        body = chat("smollm2", "Count from one to fifty.", stream=True, max_tokens=60)
        async with client.stream("POST", CHAT, json=body) as stream:
            lines = await streaming(stream)
            unload = await client.post("/v1/operator/models/unload", json={"model": "smollm2"})
            assert unload.status_code == 200 and unload.json()["state"] == "loaded"  # busy: after the stream
            async for _line in lines:
                pass
    with httpx.Client(base_url=two_models, timeout=TIMEOUT) as sync:
        wait_unloaded(sync, "smollm2")
        assert sync.post(CHAT, json=chat("gemma3-270m", keep_alive=0)).status_code == 200
        wait_unloaded(sync, "gemma3-270m")
        for model in ("smollm2", "gemma3-270m"):
            assert sync.post(CHAT, json=chat(model)).status_code == 200
            time.sleep(2.0)  # four of the pool's idle checks
            assert model in loaded(sync), f"{model} was unloaded after a plain request"
            if model == "smollm2":
                assert sync.post("/v1/operator/models/unload", json={"model": "smollm2"}).status_code == 200
