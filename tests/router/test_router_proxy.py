"""The router's proxying, failure handling, limits, keys and observability, against fake upstreams
(real processes, real HTTP): the faults here cannot be produced on demand by the real services."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from router_helpers import API_KEYS, AUDIO_LIMIT, JSON_LIMIT

TIMEOUT = httpx.Timeout(20.0)


async def _post_chat(router: str, body: bytes, **headers: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        return await client.post(
            router + "/v1/chat/completions", content=body, headers={"content-type": "application/json", **headers}
        )


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    return body["error"]


async def test_request_and_response_pass_through_unchanged(fault_router: str) -> None:
    body = b'{"model": "echo",   "messages": [{"role": "user", "content": "h\\u00e9"}], "x": [1,2]}'
    response = await _post_chat(fault_router, body, authorization="Bearer not-for-upstream", cookie="c=1")
    assert response.status_code == 201  # the upstream's status, not a router default
    assert response.headers["x-fake"] == "echo"
    assert response.headers["set-cookie"] == "a=1"
    seen = response.json()
    assert seen["sha256"] == hashlib.sha256(body).hexdigest()  # byte for byte, spacing included
    assert seen["seen"]["path"] == "/v1/chat/completions"
    assert seen["seen"]["headers"]["content-type"] == "application/json"
    # The router's own credentials and the client's cookies stay at the router.
    assert "authorization" not in seen["seen"]["headers"]
    assert "cookie" not in seen["seen"]["headers"]


async def test_cookies_of_one_answer_are_not_sent_with_later_requests(fault_router: str) -> None:
    first = await _post_chat(fault_router, b'{"model": "echo"}')
    assert first.headers["set-cookie"] == "a=1"  # relayed to the client that got it...
    second = await _post_chat(fault_router, b'{"model": "echo"}')
    assert "cookie" not in second.json()["seen"]["headers"]  # ...but not kept by the router's shared client


async def test_response_body_bytes_are_relayed_verbatim(fault_router: str) -> None:
    body = b'{"prompt":  "Tell me a story",\n "max_new_tokens": 128}'
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(fault_router + "/v1/completions", content=body)
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))


async def test_upstream_error_status_passes_through(fault_router: str) -> None:
    response = await _post_chat(fault_router, b'{"model": "status-429"}')
    assert response.status_code == 429
    assert response.headers["x-fake"] == "status"
    assert _error(response)["message"] == "fake 429"


async def test_request_id_generated_and_passed_to_upstream(fault_router: str) -> None:
    given = await _post_chat(fault_router, b"{}", **{"x-request-id": "trace-abc.123"})
    assert given.headers["x-request-id"] == "trace-abc.123"
    assert given.json()["seen"]["headers"]["x-request-id"] == "trace-abc.123"
    generated = await _post_chat(fault_router, b"{}")
    request_id = generated.headers["x-request-id"]
    assert len(request_id) >= 16
    assert generated.json()["seen"]["headers"]["x-request-id"] == request_id


async def test_query_and_path_are_forwarded(fault_router: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        found = await client.get(fault_router + "/v1/images/files/known.png")
        missing = await client.get(fault_router + "/v1/images/files/other.png")
        upload = await client.post(
            fault_router + "/v1/audio/transcriptions?beam_size=2&language=en", files={"file": ("a.wav", b"RIFF")}
        )
    assert found.status_code == 200
    assert found.headers["content-type"] == "image/png"
    assert found.content.startswith(b"\x89PNG")
    assert missing.status_code == 404
    assert _error(missing)["message"] == "no such image"
    assert upload.json()["seen"]["query"] == "beam_size=2&language=en"


async def test_sse_chunks_are_not_buffered(fault_router: str, fakes: dict[str, str]) -> None:
    """The fake sends one event and then waits to be released: the client must get that event while
    the upstream is still holding the stream open; a buffering router would block it (bounded by the
    read timeout below)."""
    body = json.dumps({"model": "gated", "stream": True}).encode()
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(15.0)) as client,
        client.stream(
            "POST", fault_router + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        first = await anext(lines)
        assert json.loads(first.removeprefix("data: "))["choices"][0]["delta"]["content"] == "first"
        # Only now is the upstream allowed to finish.
        await client.post(fakes["text"] + "/control/release")
        rest = [line async for line in lines if line]
    assert rest[-1] == "data: [DONE]"
    assert json.loads(rest[0].removeprefix("data: "))["choices"][0]["delta"]["content"] == "second"


async def test_upstream_hang_is_a_504(fault_router: str) -> None:
    response = await _post_chat(fault_router, b'{"model": "hang"}')
    assert response.status_code == 504
    error = _error(response)
    assert error["code"] == "upstream_timeout"
    assert "text" in str(error["message"])


async def _sse_lines(router: str, behaviour: str) -> list[str]:
    body = json.dumps({"model": behaviour, "stream": True}).encode()
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        client.stream(
            "POST", router + "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
        ) as response,
    ):
        assert response.status_code == 200
        return [line async for line in response.aiter_lines() if line]


async def test_dropped_stream_ends_with_an_error_event(fault_router: str) -> None:
    lines = await _sse_lines(fault_router, "drop")
    contents = [json.loads(line.removeprefix("data: ")) for line in lines]
    assert [c["choices"][0]["delta"]["content"] for c in contents[:-1]] == ["first", "second"]
    assert contents[-1]["error"]["code"] == "upstream_disconnected"
    assert contents[-1]["error"]["type"] == "upstream_error"


async def test_dropped_json_answer_is_not_passed_off_as_complete(fault_router: str) -> None:
    # Not an event stream, so no error event can be added: the client must see a broken response.
    with pytest.raises(httpx.RemoteProtocolError):
        await _post_chat(fault_router, b'{"model": "drop-json"}')


async def test_stalled_stream_ends_with_a_timeout_event(fault_router: str) -> None:
    lines = await _sse_lines(fault_router, "stall")
    last = json.loads(lines[-1].removeprefix("data: "))
    assert len(lines) == 2
    assert last["error"]["code"] == "upstream_timeout"


async def test_dropped_stream_through_openai_client_raises(fault_router: str) -> None:
    import openai

    client = openai.AsyncOpenAI(base_url=fault_router + "/v1", api_key="unused", max_retries=0, timeout=20.0)
    stream = await client.chat.completions.create(
        model="drop", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    received: list[str] = []
    with pytest.raises(openai.APIError, match="dropped the connection"):
        async for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["first", "second"]
    await client.close()


async def test_unconfigured_and_unreachable_modalities_are_503(partial_router: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        image = await client.post(partial_router + "/v1/txt2img", json={"prompt": "a cat"})
        audio = await client.post(partial_router + "/v1/audio/transcriptions", files={"file": ("a.wav", b"RIFF")})
        text = await client.post(partial_router + "/v1/chat/completions", json={"model": "echo"})
        ready = await client.get(partial_router + "/ready")
        models = await client.get(partial_router + "/v1/models")
    assert image.status_code == 503
    assert _error(image)["code"] == "modality_not_configured"
    assert "image" in str(_error(image)["message"]) and "nexa server tiny-sd" in str(_error(image)["message"])
    assert audio.status_code == 503
    assert _error(audio)["code"] == "upstream_unavailable"
    assert "audio" in str(_error(audio)["message"]) and "nexa server whisper-tiny.en" in str(_error(audio)["message"])
    assert "127.0.0.1" not in str(_error(audio)["message"])
    assert audio.headers["retry-after"] == "2"
    assert text.status_code == 201  # the configured, reachable modality keeps answering
    assert ready.status_code == 503
    assert ready.json()["upstreams"]["audio"]["status"] == "failed"
    assert ready.json()["upstreams"]["text"]["status"] == "ready"
    assert "image" not in ready.json()["upstreams"]
    assert [m["id"] for m in models.json()["data"]] == ["fake-text-model"]


async def test_ready_reports_each_upstream(fault_router: str, loading_router: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        all_ready = await client.get(fault_router + "/ready")
        one_loading = await client.get(loading_router + "/ready")
        models = await client.get(fault_router + "/v1/models")
    assert all_ready.status_code == 200
    assert all_ready.json()["status"] == "ready"
    assert set(all_ready.json()["upstreams"]) == {"text", "image", "audio"}
    assert one_loading.status_code == 503
    assert one_loading.json()["status"] == "loading"
    assert one_loading.json()["upstreams"]["image"] == {"status": "loading", "model": "fake-loading-model"}
    assert models.status_code == 200
    assert models.json()["object"] == "list"
    assert sorted(m["id"] for m in models.json()["data"]) == ["fake-audio-model", "fake-image-model", "fake-text-model"]


async def test_oversize_json_body_is_413(fault_router: str) -> None:
    body = json.dumps({"model": "echo", "pad": "x" * JSON_LIMIT}).encode()
    response = await _post_chat(fault_router, body)
    assert response.status_code == 413
    assert _error(response)["code"] == "request_too_large"
    just_fits = await _post_chat(fault_router, b" " * (JSON_LIMIT - 2) + b"{}")
    assert just_fits.status_code == 201


async def _chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_oversize_upload_without_length_is_413_while_streaming(fault_router: str) -> None:
    # No Content-Length (chunked): the router can only find out by counting as the body streams in.
    parts = [os.urandom(64 * 1024) for _ in range(AUDIO_LIMIT // (64 * 1024) + 2)]
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(
            fault_router + "/v1/audio/transcriptions",
            content=_chunks(parts),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
        declared = await client.post(
            fault_router + "/v1/audio/transcriptions", files={"file": ("a.wav", os.urandom(AUDIO_LIMIT + 1))}
        )
    assert response.status_code == 413
    assert declared.status_code == 413
    assert "audio/transcriptions" in str(_error(declared)["message"])


async def test_upload_streams_to_the_upstream(fault_router: str, fakes: dict[str, str]) -> None:
    """The client sends half the body, then waits until the upstream has received it before sending
    the rest: a router that read uploads whole before forwarding would never let that happen."""
    first, second = os.urandom(100_000), os.urandom(100_000)
    boundary = "nexa-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    body_parts = [head + first, second + tail]
    upstream_saw_first_half = False

    async with httpx.AsyncClient(timeout=TIMEOUT) as client:

        async def body() -> AsyncIterator[bytes]:
            nonlocal upstream_saw_first_half
            yield body_parts[0]
            for _ in range(200):  # bounded: 200 × 50 ms
                received = (await client.get(fakes["audio"] + "/control/received")).json()["bytes"]
                if received >= len(body_parts[0]):
                    upstream_saw_first_half = True
                    break
                await asyncio.sleep(0.05)
            yield body_parts[1]

        total = sum(len(p) for p in body_parts)
        response = await client.post(
            fault_router + "/v1/audio/transcriptions",
            content=body(),
            headers={"content-type": f"multipart/form-data; boundary={boundary}", "content-length": str(total)},
        )
    assert response.status_code == 200
    assert upstream_saw_first_half
    seen = response.json()
    assert seen["sha256"] == hashlib.sha256(b"".join(body_parts)).hexdigest()
    assert seen["seen"]["headers"]["content-length"] == str(total)
    assert seen["seen"]["headers"]["content-type"] == f"multipart/form-data; boundary={boundary}"


async def test_api_keys(keyed_router: str, keyed_router_log: os.PathLike[str]) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        url = keyed_router + "/v1/chat/completions"
        missing = await client.post(url, json={"model": "echo"})
        wrong = await client.post(url, json={"model": "echo"}, headers={"authorization": "Bearer key-one-4f9b"})
        right = await client.post(url, json={"model": "echo"}, headers={"authorization": f"Bearer {API_KEYS[1]}"})
        models_missing = await client.get(keyed_router + "/v1/models")
        models_right = await client.get(keyed_router + "/v1/models", headers={"authorization": f"Bearer {API_KEYS[0]}"})
        health = await client.get(keyed_router + "/health")
        ready = await client.get(keyed_router + "/ready")
    assert missing.status_code == 401
    assert _error(missing)["type"] == "authentication_error"
    assert missing.headers["www-authenticate"] == "Bearer"
    assert wrong.status_code == 401
    assert "key-one" not in wrong.text
    assert right.status_code == 201
    assert models_missing.status_code == 401
    assert models_right.status_code == 200
    assert health.status_code == 200
    assert ready.status_code == 200
    log_text = Path(keyed_router_log).read_text(encoding="utf-8", errors="replace")
    assert "request" in log_text  # the access log is there...
    assert all(key not in log_text for key in API_KEYS) and "key-one-4f9b" not in log_text  # ...without keys


async def test_openai_client_with_keys(keyed_router: str) -> None:
    import openai

    async with openai.AsyncOpenAI(base_url=keyed_router + "/v1", api_key="wrong", max_retries=0) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.models.list()
    async with openai.AsyncOpenAI(base_url=keyed_router + "/v1", api_key=API_KEYS[0], max_retries=0) as client:
        models = await client.models.list()
    assert [m.id for m in models.data] == ["fake-text-model"]


async def test_cors(fault_router: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        preflight = await client.options(
            fault_router + "/v1/chat/completions",
            headers={
                "origin": "http://ui.example",
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization, content-type",
            },
        )
        other = await client.options(
            fault_router + "/v1/chat/completions",
            headers={"origin": "http://evil.example", "access-control-request-method": "POST"},
        )
        simple = await client.get(fault_router + "/health", headers={"origin": "http://other.example"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "http://ui.example"
    assert other.status_code == 400
    assert "access-control-allow-origin" not in other.headers
    assert simple.headers["access-control-allow-origin"] == "http://other.example"
    assert "x-request-id" in simple.headers["access-control-expose-headers"].lower()


async def test_metrics_count_routes_and_upstream_errors(fault_router: str) -> None:
    await _post_chat(fault_router, b'{"model": "status-500"}')
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        metrics = (await client.get(fault_router + "/metrics")).text
    assert 'nexa_router_upstream_errors_total{kind="status_5xx",upstream="text"}' in metrics
    assert 'nexa_http_requests_total{method="POST",route="/v1/chat/completions",status="500"}' in metrics
    assert 'nexa_http_request_duration_seconds_count{method="POST",route="/v1/chat/completions"}' in metrics
    assert "nexa_http_in_flight_requests" in metrics
    # Every exchange so far (answered, timed out, dropped, streamed) has been closed: nothing leaks.
    assert 'nexa_router_upstream_in_flight_requests{upstream="text"} 0.0' in metrics
    assert 'nexa_router_upstream_in_flight_requests{upstream="audio"} 0.0' in metrics


async def test_unknown_route_is_404_at_the_router(fault_router: str) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as client:
        response = await client.post(fault_router + "/v1/not-a-route", json={})
    assert response.status_code == 404
    assert _error(response)["type"] == "not_found_error"
