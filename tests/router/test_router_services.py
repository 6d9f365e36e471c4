"""The router in front of the real services (real models, real processes, real HTTP): the official
`openai` client, the seed's requests byte for byte, streaming, a service stopping and coming back,
API keys."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from pathlib import Path

import httpx
import openai
import pytest
from support import router_spec, service_spec

from nexa_cli.supervisor import Supervisor

SEED_SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "nexa-server-api.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TIMEOUT = httpx.Timeout(120.0, connect=5.0)
JSON = {"content-type": "application/json"}


def seed_request_bodies() -> dict[str, bytes]:
    """The JSON request bodies of the seed's API description, exactly as written there."""
    text = SEED_SPEC.read_text(encoding="utf-8")
    parts = re.split(r"^\d+\. [^\n]*: (/v1/[\w/-]+)\n", text, flags=re.M)
    bodies = {}
    for path, section in zip(parts[1::2], parts[2::2], strict=True):
        match = re.search(r"Request body:\n\n(\{\n.*?\n\})\n", section, flags=re.S)
        if match and "(form-data)" not in match.group(1):
            bodies[path] = match.group(1).encode()
    return bodies


@pytest.fixture(scope="module")
def seed() -> dict[str, bytes]:
    bodies = seed_request_bodies()
    assert set(bodies) == {"/v1/completions", "/v1/chat/completions", "/v1/function-calling", "/v1/txt2img",
                           "/v1/img2img"}  # fmt: skip
    return bodies


@pytest.fixture(scope="module")
def client(router_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=router_url + "/v1", api_key="unused", max_retries=0, timeout=120.0)


# --- the official openai client ---------------------------------------------------------------


def test_openai_chat(client: openai.OpenAI) -> None:
    answer = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8, temperature=0
    )
    assert answer.object == "chat.completion"
    assert isinstance(answer.choices[0].message.content, str) and answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 8


def test_openai_chat_stream(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Count to ten."}], max_tokens=8, stream=True
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) >= 2
    assert text
    assert chunks[-1].choices[0].finish_reason in ("stop", "length") or chunks[-2].choices[0].finish_reason


def test_openai_chat_tools(client: openai.OpenAI) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    answer = client.chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[tool],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=64,
        temperature=0,
    )
    calls = answer.choices[0].message.tool_calls
    assert calls and calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments)


def test_openai_completions(client: openai.OpenAI) -> None:
    answer = client.completions.create(model="smollm2", prompt="Once upon a time", max_tokens=8, temperature=0)
    assert answer.object == "text_completion"
    assert answer.choices[0].text


def test_openai_transcription_and_translation(client: openai.OpenAI, shared_data: Path) -> None:
    with (shared_data / "jfk.flac").open("rb") as audio:
        transcript = client.audio.transcriptions.create(model="whisper-tiny.en", file=audio)
    assert "ask not what your country can do for you" in transcript.text.lower()
    with (shared_data / "jfk.flac").open("rb") as audio:
        translation = client.audio.translations.create(model="whisper-tiny.en", file=audio)
    assert "country" in translation.text.lower()


def test_openai_images_generate(client: openai.OpenAI, router_url: str) -> None:
    few_steps = {"sample_steps": 2}  # the server's extension: keeps the CPU work small
    as_base64 = client.images.generate(
        model="tiny-sd",
        prompt="a red square",
        size="64x64",
        response_format="b64_json",
        extra_body=few_steps,
    )
    assert as_base64.data and base64.b64decode(as_base64.data[0].b64_json or "").startswith(PNG_MAGIC)
    as_url = client.images.generate(
        model="tiny-sd",
        prompt="a red square",
        size="64x64",
        response_format="url",
        extra_body=few_steps,
    )
    url = as_url.data[0].url if as_url.data else None
    assert url
    # The service's URL works unchanged against the router (same path), resolved as any client would.
    download = httpx.get(str(httpx.URL(router_url + "/v1/").join(url)), timeout=TIMEOUT)
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.content.startswith(PNG_MAGIC)


def test_openai_models_list(client: openai.OpenAI) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"smollm2", "whisper-tiny.en", "tiny-sd"} <= ids


# --- the seed's requests, byte for byte ---------------------------------------------------------


def _post(router_url: str, path: str, body: bytes, timeout: httpx.Timeout = TIMEOUT) -> httpx.Response:
    return httpx.post(router_url + path, content=body, headers=JSON, timeout=timeout)


def test_seed_completions(router_url: str, seed: dict[str, bytes]) -> None:
    response = _post(router_url, "/v1/completions", seed["/v1/completions"])
    assert response.status_code == 200, response.text
    assert isinstance(response.json()["result"], str)


def test_seed_chat(router_url: str, seed: dict[str, bytes]) -> None:
    response = _post(router_url, "/v1/chat/completions", seed["/v1/chat/completions"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["object"] == "chat.completion"
    assert {"id", "created", "choices"} <= set(body)
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert isinstance(body["choices"][0]["message"]["content"], str)


def test_seed_function_calling(router_url: str, seed: dict[str, bytes]) -> None:
    response = _post(router_url, "/v1/function-calling", seed["/v1/function-calling"])
    assert response.status_code == 200, response.text
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"]["name"] == "UserDetail"
    assert {"name", "age"} <= set(json.loads(call["function"]["arguments"]))


def test_seed_txt2img_and_img2img(router_url: str, seed: dict[str, bytes], image_input_dir: Path) -> None:
    # 256×256 in 20 steps, as the seed asks: the slowest request of this module on a small CPU.
    generated = _post(router_url, "/v1/txt2img", seed["/v1/txt2img"], httpx.Timeout(600.0, connect=5.0))
    assert generated.status_code == 200, generated.text
    body = generated.json()
    assert isinstance(body["created"], float)
    png = base64.b64decode(body["data"][0]["base64"])
    assert png.startswith(PNG_MAGIC)
    download = httpx.get(str(httpx.URL(router_url + "/").join(body["data"][0]["url"])), timeout=TIMEOUT)
    assert download.content == png

    # The seed's img2img names a placeholder path: a clear 4xx, in the OpenAI error body.
    placeholder = _post(router_url, "/v1/img2img", seed["/v1/img2img"])
    assert 400 <= placeholder.status_code < 500
    assert set(placeholder.json()["error"]) >= {"message", "type", "param", "code"}
    # A request naming a real input file (small and in few steps, to keep the CPU work down).
    (image_input_dir / "router-input.png").write_bytes(png)
    real = {"prompt": "A girl", "image_path": "router-input.png", "width": 64, "height": 64, "sample_steps": 2}
    transformed = _post(router_url, "/v1/img2img", json.dumps(real).encode())
    assert transformed.status_code == 200, transformed.text
    assert base64.b64decode(transformed.json()["data"][0]["base64"]).startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("path", "query"),
    [("/v1/audio/transcriptions", "beam_size=5&language=en&temperature=0"),
     ("/v1/audio/translations", "beam_size=5&temperature=0")],
)  # fmt: skip
def test_seed_audio(router_url: str, shared_data: Path, path: str, query: str) -> None:
    # As `curl -F file=@jfk.flac "http://HOST/v1/audio/...?beam_size=5..."` sends it.
    with (shared_data / "jfk.flac").open("rb") as audio:
        response = httpx.post(f"{router_url}{path}?{query}", files={"file": ("jfk.flac", audio)}, timeout=TIMEOUT)
    assert response.status_code == 200, response.text
    assert set(response.json()) == {"text"}
    assert "your country" in response.json()["text"].lower()


# --- streaming, readiness, request IDs ----------------------------------------------------------


def _in_flight(metrics_text: str) -> float:
    match = re.search(r"^nexa_http_in_flight_requests (\S+)$", metrics_text, flags=re.M)
    assert match, "no in-flight gauge in the service's metrics"
    return float(match.group(1))


def test_stream_first_chunk_arrives_while_service_still_generating(router_url: str, text_url: str) -> None:
    """When the first chunk reaches the client, the text service must still be busy with the same
    response (its in-flight gauge counts it, besides the scrape itself): the router relayed the chunk
    as it came instead of waiting for the whole answer."""
    body = {
        "messages": [{"role": "user", "content": "Count from 1 to 100, separated by commas."}],
        "max_tokens": 48,
        "temperature": 0,
        "stream": True,
    }
    arrivals: list[float] = []
    in_flight_at_first = 0.0
    with (
        httpx.Client(timeout=TIMEOUT) as http,
        http.stream("POST", router_url + "/v1/chat/completions", json=body) as response,
    ):
        assert response.status_code == 200
        for line in response.iter_lines():
            if not line.startswith("data: {"):
                continue
            arrivals.append(time.monotonic())
            if len(arrivals) == 1:
                in_flight_at_first = _in_flight(http.get(text_url + "/metrics").text)
    assert len(arrivals) >= 10
    assert in_flight_at_first >= 2  # the scrape and the stream being generated
    assert arrivals[0] < arrivals[-1]


def test_ready_and_models_union(router_url: str) -> None:
    ready = httpx.get(router_url + "/ready", timeout=TIMEOUT)
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"
    assert {m: v["status"] for m, v in ready.json()["upstreams"].items()} == {
        "text": "ready", "audio": "ready", "image": "ready"
    }  # fmt: skip
    models = httpx.get(router_url + "/v1/models", timeout=TIMEOUT).json()
    assert models["object"] == "list"
    by_id = {m["id"]: m for m in models["data"]}
    assert by_id["smollm2"]["modality"] == "text"
    assert by_id["whisper-tiny.en"]["modality"] == "audio"
    assert by_id["tiny-sd"]["modality"] == "image"


def test_request_id_round_trip(router_url: str) -> None:
    request_id = f"router-test-{uuid.uuid4().hex}"
    response = httpx.post(
        router_url + "/v1/completions",
        json={"prompt": "Hi", "max_tokens": 1},
        headers={"x-request-id": request_id},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    assert response.headers["x-request-id"] == request_id
    assert len(response.headers.get_list("x-request-id")) == 1


def test_errors_of_the_service_pass_through(router_url: str) -> None:
    response = httpx.post(router_url + "/v1/chat/completions", json={"messages": []}, timeout=TIMEOUT)
    assert response.status_code == 400
    assert response.json()["error"]["param"] == "messages"


# --- a service stopping and coming back; API keys -----------------------------------------------


def test_stopped_service_answers_503_and_recovers(
    router_supervisor: Supervisor, text_url: str, shared_data: Path, nexa_cache: Path
) -> None:
    audio_spec = service_spec("audio", {"NEXA_AUDIO_MODEL": "whisper-tiny.en"}, "audio-own")
    audio = router_supervisor.start(audio_spec)
    router_supervisor.wait_ready(audio, 180.0)
    routed_spec = router_spec(
        name="router-restarts", upstreams={"text": text_url, "audio": audio_spec.url}, ready_path="/health"
    )
    router_supervisor.wait_ready(router_supervisor.start(routed_spec), 60.0)
    router = routed_spec.url
    flac = (shared_data / "jfk.flac").read_bytes()

    def transcribe() -> httpx.Response:
        files = {"file": ("jfk.flac", flac)}
        return httpx.post(router + "/v1/audio/transcriptions", files=files, timeout=TIMEOUT)

    def complete() -> httpx.Response:
        return httpx.post(router + "/v1/completions", json={"prompt": "Hi", "max_tokens": 1}, timeout=TIMEOUT)

    assert transcribe().status_code == 200  # a pooled connection to the service now exists
    router_supervisor.stop_child(audio)

    down = transcribe()
    assert down.status_code == 503
    assert down.json()["error"]["code"] == "upstream_unavailable"
    assert "audio" in down.json()["error"]["message"]
    assert complete().status_code == 200  # the other modality keeps answering
    assert httpx.get(router + "/ready", timeout=TIMEOUT).json()["upstreams"]["audio"]["status"] == "failed"

    router_supervisor.wait_ready(router_supervisor.start(audio_spec), 180.0)  # same address, new process
    back = transcribe()
    assert back.status_code == 200
    assert "your country" in back.json()["text"].lower()
    assert httpx.get(router + "/ready", timeout=TIMEOUT).status_code == 200


def test_api_keys_in_front_of_the_real_service(router_supervisor: Supervisor, text_url: str) -> None:
    spec = router_spec(
        name="router-real-keys", upstreams={"text": text_url}, env={"NEXA_ROUTER_API_KEYS": "sk-local-1,sk-local-2"}
    )
    router_supervisor.wait_ready(router_supervisor.start(spec), 60.0)
    request = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1}
    missing = httpx.post(spec.url + "/v1/chat/completions", json=request, timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.json()["error"]["type"] == "authentication_error"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=spec.url + "/v1", api_key="sk-local-3", max_retries=0).chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=1
        )
    right = openai.OpenAI(base_url=spec.url + "/v1", api_key="sk-local-2", max_retries=0)
    answer = right.chat.completions.create(model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=1)
    assert answer.choices[0].message.content is not None
