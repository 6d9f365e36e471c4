"""The protocol details clients trip over, on the real router and services: absolute image URLs
(directly and behind a reverse proxy), `size: "auto"`, field accounting and strict mode, token
limits and their aliases, `ignore_eos`/`min_tokens`/`seed`, the legacy `function_call`, cut UTF-8,
HEAD on every GET route, and WebSocket upgrades."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import openai
import pytest
import websockets.sync.client
from PIL import Image
from support import service_spec, start_ready
from websockets.exceptions import InvalidStatus

from nexa_cli.supervisor import Supervisor

MODEL = "smollm2"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
FAST = {"sample_steps": 2, "seed": 7}  # this server's extensions: a quick image


@pytest.fixture(scope="module")
def http(api_base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_base, timeout=300) as client:
        yield client


def _chat(http: httpx.Client, **body: object) -> httpx.Response:
    return http.post("/chat/completions", json={"model": MODEL, "temperature": 0, **body})


# --- images --------------------------------------------------------------------------------------


def _generate_and_fetch(base_url: str) -> tuple[str, bytes]:
    client = openai.OpenAI(base_url=base_url, api_key="unused", max_retries=0)
    image = client.images.generate(prompt="a red bicycle", size="64x64", response_format="url", extra_body=FAST)
    url = image.data[0].url or ""
    answer = httpx.get(url, timeout=60)  # as a user would: the URL as it came
    assert answer.status_code == 200, (url, answer.text[:300])
    assert answer.headers["content-type"] == "image/png"
    return url, answer.content


def test_image_url_is_absolute_and_returns_the_png(api_base: str) -> None:
    url, png = _generate_and_fetch(api_base)
    assert url.startswith(f"{api_base}/images/files/"), url
    assert png.startswith(PNG_MAGIC)
    assert Image.open(io.BytesIO(png)).size == (64, 64)


def test_image_url_behind_a_reverse_proxy_uses_the_proxys_address(proxied_router: str) -> None:
    url, png = _generate_and_fetch(f"{proxied_router}/v1")
    assert url.startswith(f"{proxied_router}/v1/images/files/"), url
    assert png.startswith(PNG_MAGIC)


def test_size_auto_is_the_models_native_size(http: httpx.Client) -> None:
    response = http.post(
        "/images/generations", json={"prompt": "a cat", "size": "auto", "response_format": "b64_json", **FAST}
    )
    assert response.status_code == 200, response.text
    import base64

    png = base64.b64decode(response.json()["data"][0]["b64_json"])
    # tiny-sd: a 32-pixel latent with a VAE scale factor of 8.
    assert Image.open(io.BytesIO(png)).size == (256, 256)


# --- field accounting --------------------------------------------------------------------------


def test_advisory_and_unknown_fields_are_named_in_the_header(http: httpx.Client) -> None:
    response = _chat(
        http,
        messages=[{"role": "user", "content": "Hi"}],
        max_tokens=2,
        user="u1",
        store=False,
        reasoning_effort="low",
        chat_template_kwargs={"x": 1},
        stream_options={"include_usage": True, "continuous_usage_stats": True},
        stream=True,
    )
    assert response.status_code == 200, response.text
    named = response.headers["x-nexa-ignored-fields"].split(",")
    assert named == [
        "user",
        "store",
        "reasoning_effort",
        "chat_template_kwargs",
        "stream_options.continuous_usage_stats",
    ]


def test_honoured_fields_are_not_named(http: httpx.Client) -> None:
    response = _chat(http, messages=[{"role": "user", "content": "Hi"}], max_completion_tokens=2, seed=3, top_p=0.9)
    assert response.status_code == 200, response.text
    assert "x-nexa-ignored-fields" not in response.headers


def test_image_and_audio_routes_name_their_ignored_fields(http: httpx.Client, shared_data: object) -> None:
    image = http.post(
        "/images/generations",
        json={"prompt": "x", "size": "64x64", "quality": "hd", "style": "vivid", "nexa_unknown": 1, **FAST},
    )
    assert image.status_code == 200, image.text
    assert image.headers["x-nexa-ignored-fields"] == "quality,style,nexa_unknown"
    with open(f"{shared_data}/jfk.flac", "rb") as audio:
        transcript = http.post(
            "/audio/transcriptions", files={"file": audio}, data={"chunking_strategy": "auto", "diarize": "true"}
        )
    assert transcript.status_code == 200, transcript.text
    assert transcript.headers["x-nexa-ignored-fields"] == "chunking_strategy,diarize"


@pytest.mark.parametrize(
    ("field", "value"),
    [("n", 2), ("logit_bias", {"50256": -100}), ("functions", [{"name": "f"}]), ("modalities", ["text", "audio"])],
)
def test_fields_that_cannot_be_honoured_are_a_400_naming_them(http: httpx.Client, field: str, value: object) -> None:
    response = _chat(http, messages=[{"role": "user", "content": "Hi"}], max_tokens=2, **{field: value})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == field and "not supported" in error["message"]


def test_strict_mode_refuses_unknown_fields(supervisor: Supervisor, nexa_cache: object) -> None:
    env = {"NEXA_TEXT_MODEL": MODEL, "NEXA_TEXT_STRICT_FIELDS": "true", "NEXA_TEXT_N_CTX": "512"}
    url = start_ready(supervisor, service_spec("text", env, name="text-strict"))
    try:
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
        refused = httpx.post(f"{url}/v1/chat/completions", json={**body, "top_a": 0.2}, timeout=120)
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == "top_a" and "strict" in refused.json()["error"]["message"]
        # Advisory OpenAI fields are still accepted (and named) in strict mode.
        accepted = httpx.post(f"{url}/v1/chat/completions", json={**body, "user": "u"}, timeout=120)
        assert accepted.status_code == 200 and accepted.headers["x-nexa-ignored-fields"] == "user"
    finally:
        supervisor.stop_child(next(c for c in supervisor.children if c.spec.name == "text-strict"))


# --- token limits and generation controls ------------------------------------------------------


def test_the_smaller_of_max_tokens_and_max_completion_tokens_wins(http: httpx.Client) -> None:
    for sent in ({"max_tokens": 3, "max_completion_tokens": 9}, {"max_tokens": 9, "max_completion_tokens": 3}):
        response = _chat(http, messages=[{"role": "user", "content": "Tell a story."}], ignore_eos=True, **sent)
        assert response.status_code == 200, response.text
        assert response.json()["usage"]["completion_tokens"] == 3, sent


def test_ignore_eos_and_min_tokens_run_to_the_limit(http: httpx.Client) -> None:
    for extra in ({"ignore_eos": True}, {"min_tokens": 24}):
        response = _chat(http, messages=[{"role": "user", "content": "Say hi."}], max_completion_tokens=24, **extra)
        answer = response.json()
        assert answer["usage"]["completion_tokens"] == 24, (extra, answer)
        assert answer["choices"][0]["finish_reason"] == "length"


def test_ignore_eos_with_a_grammar_is_a_400(http: httpx.Client) -> None:
    response = _chat(
        http, messages=[{"role": "user", "content": "x"}], response_format={"type": "json_object"}, ignore_eos=True
    )
    assert response.status_code == 400 and response.json()["error"]["param"] == "ignore_eos"


def test_seed_makes_sampling_repeatable(http: httpx.Client) -> None:
    body = {"messages": [{"role": "user", "content": "Name a colour."}], "max_tokens": 12, "temperature": 1.0}
    first, second = (_chat(http, **body, seed=42).json() for _ in range(2))
    assert first["choices"][0]["message"]["content"] == second["choices"][0]["message"]["content"]


def test_function_call_is_only_on_the_seed_route(http: httpx.Client) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "lookup",
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string", "maxLength": 20}},
                "required": ["q"],
            },
        },
    }
    body = {"messages": [{"role": "user", "content": "Look up cats."}], "tools": [tool], "max_tokens": 40}
    chat = _chat(http, **body, tool_choice="required").json()["choices"][0]["message"]
    assert chat["tool_calls"] and chat["function_call"] is None
    seed = http.post("/function-calling", json={**body, "tool_choice": "auto"}).json()["choices"][0]["message"]
    assert seed["tool_calls"] and seed["function_call"] == seed["tool_calls"][0]["function"]


def test_a_character_cut_by_the_token_limit_is_dropped_not_replaced(http: httpx.Client) -> None:
    prompt = "🤖🤖🤖🤖🤖🤖🤖🤖"
    for max_tokens in range(1, 7):
        body = {"model": MODEL, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0}
        plain = http.post("/completions", json=body).json()["choices"][0]["text"]
        assert "\ufffd" not in plain, (max_tokens, plain)
        with http.stream("POST", "/completions", json={**body, "stream": True}) as stream:
            pieces = [
                json.loads(line[6:])["choices"][0]["text"]
                for line in stream.iter_lines()
                if line.startswith("data: {") and '"choices": [{' in line
            ]
        assert "\ufffd" not in "".join(pieces), (max_tokens, pieces)
        assert "".join(pieces) == plain


# --- HTTP: HEAD and upgrades --------------------------------------------------------------------


def _get_paths(base: str) -> list[str]:
    document = httpx.get(f"{base}/openapi.json", timeout=30).json()
    paths = [p for p, ops in document["paths"].items() if "get" in ops and "{" not in p]
    return sorted({*paths, "/health", "/metrics", "/openapi.json", "/docs"})


@pytest.mark.parametrize("component", ["router", "text", "image", "audio"])
def test_head_is_answered_on_every_get_route(
    component: str, router_url: str, text_url: str, image_url: str, audio_url: str
) -> None:
    base = {"router": router_url, "text": text_url, "image": image_url, "audio": audio_url}[component]
    for path in _get_paths(base):
        got = httpx.get(base + path, timeout=30)
        head = httpx.head(base + path, timeout=30)
        assert head.status_code == got.status_code, (path, head.status_code, got.status_code)
        assert head.content == b""
        assert head.headers.get("content-type") == got.headers.get("content-type"), path


def test_head_on_an_image_file_through_the_router(api_base: str) -> None:
    client = openai.OpenAI(base_url=api_base, api_key="unused", max_retries=0)
    url = client.images.generate(prompt="a boat", size="64x64", extra_body=FAST).data[0].url or ""
    head = httpx.head(url, timeout=60)
    assert head.status_code == 200 and head.headers["content-type"] == "image/png" and head.content == b""


@pytest.mark.parametrize("component", ["router", "text"])
def test_websocket_upgrade_is_refused_with_a_json_body(component: str, router_url: str, text_url: str) -> None:
    base = {"router": router_url, "text": text_url}[component].replace("http://", "ws://")
    for path in ("/v1/realtime", "/v1/chat/completions"):
        with pytest.raises(InvalidStatus) as refused:
            websockets.sync.client.connect(base + path, open_timeout=30).close()
        response = refused.value.response
        assert response.status_code == 400
        assert json.loads(response.body)["error"]["code"] == "upgrade_not_supported"
