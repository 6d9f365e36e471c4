"""Security through the router in front of the real services: API keys on every /v1 route of the
OpenAPI document (and on spellings of them), no path traversal (image_path, output file URLs,
`model` fields), uploads never executed nor served back, no paths or traces in error messages."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from reliability_helpers import LEAK_MARKERS, error_of
from support import router_spec

from nexa_cli.supervisor import Supervisor

KEY = "rel-key-5d1e"
CHAT = "/v1/chat/completions"
SMALL_IMAGE = {"width": 64, "height": 64, "sample_steps": 2}


@pytest.fixture(scope="module")
def keyed_router(
    text_url: str, audio_url: str, image_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    spec = router_spec(
        {"text": text_url, "audio": audio_url, "image": image_url},
        {"NEXA_ROUTER_API_KEYS": KEY},
        name="rel-keyed-router",
        ready_path="/health",
    )
    with Supervisor(tmp_path_factory.mktemp("rel-security-logs")) as supervisor:
        supervisor.wait_ready(supervisor.start(spec), 60)
        yield spec.url


@pytest.fixture(scope="module")
def http(router_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=router_url, timeout=httpx.Timeout(120.0, connect=5.0)) as client:
        yield client


def _operations(doc: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path.replace("{name}", "0" * 32 + ".png"))
        for path, item in doc["paths"].items()
        if path.startswith("/v1")
        for method in item
    ]


def api_error(response: httpx.Response, path: str, status: int | None = None) -> dict[str, Any]:
    """The error of an answer in its API's shape: Anthropic's on the Messages API, OpenAI's elsewhere."""
    if not path.startswith("/v1/messages"):
        return error_of(response, status)
    assert status is None or response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert body["type"] == "error" and set(body["error"]) == {"type", "message"}, body
    error: dict[str, Any] = body["error"]
    return error


def test_every_v1_route_needs_the_key(keyed_router: str) -> None:
    with httpx.Client(base_url=keyed_router, timeout=30) as client:
        operations = _operations(client.get("/openapi.json").json())
        assert len(operations) >= 10, operations
        for method, path in operations:
            for headers in (
                {},
                {"authorization": "Bearer wrong"},
                {"authorization": KEY},
                {"authorization": "Basic " + KEY},
            ):
                refused = client.request(method, path, headers=headers, json={})
                assert api_error(refused, path, 401)["type"] == "authentication_error", (method, path, headers)
                assert refused.headers["www-authenticate"] == "Bearer"
                assert KEY not in refused.text
            allowed = client.request(method, path, headers={"authorization": f"Bearer {KEY}"}, json={})
            assert allowed.status_code != 401, (method, path)
            if allowed.status_code >= 400:
                api_error(allowed, path)


@pytest.mark.parametrize(
    "path",
    ["/v1/models/", "//v1/models", "/v1//models", "/V1/models", "/v1/./models", "/v1/%6dodels", "/v1/models%00",
     "/v1/chat/completions/", "/v1/chat/../models", "/x/../v1/models", "/v1/images/files/", "/v1/images/files"],
)  # fmt: skip
def test_other_spellings_of_v1_routes_are_not_a_way_around_the_key(keyed_router: str, path: str) -> None:
    raw = httpx.Client(base_url=keyed_router, timeout=30)
    with raw:
        for method in ("GET", "POST"):
            response = raw.request(method, httpx.URL(keyed_router).copy_with(raw_path=path.encode()))
            if response.status_code in (307, 308):
                # FastAPI's trailing-slash redirect: it names the real route, which needs the key; no data.
                assert response.headers["location"].endswith(path.rstrip("/")), response.headers
                assert not response.content
                continue
            assert response.status_code in (401, 404, 405), (method, path, response.status_code, response.text[:300])
            error_of(response)


def test_public_routes_hold_no_model_data(keyed_router: str) -> None:
    """What answers without a key: liveness, readiness, metrics and the API's description; nothing that runs a model."""
    with httpx.Client(base_url=keyed_router, timeout=30) as client:
        for path in ("/health", "/ready", "/metrics", "/openapi.json", "/docs"):
            response = client.get(path)
            assert response.status_code == 200, path
            for marker in (*LEAK_MARKERS, KEY):
                assert marker not in response.text, (path, marker)


# --- path traversal ------------------------------------------------------------------------------

TRAVERSALS = [
    "../../../../etc/passwd", "/etc/passwd", "..\\..\\..\\windows\\win.ini", "input/../../secret.png",
    "%2e%2e/%2e%2e/etc/passwd", "....//....//etc/passwd", "file:///etc/passwd", "~/.ssh/id_rsa",
    "a.png\x00.txt", "/proc/self/environ", "x" * 5000,
]  # fmt: skip


@pytest.mark.parametrize("image_path", TRAVERSALS)
def test_image_path_never_leaves_the_input_folder(http: httpx.Client, image_path: str) -> None:
    response = http.post("/v1/img2img", json={"prompt": "x", **SMALL_IMAGE, "image_path": image_path})
    error = error_of(response, 400)
    assert error["param"] == "image_path"
    assert "passwd" not in error["message"] or image_path in error["message"], error  # never the file's content
    assert "root:" not in response.text


@pytest.mark.parametrize(
    "raw_path",
    ["/v1/images/files/..%2F..%2F..%2Fetc%2Fpasswd", "/v1/images/files/%2e%2e%2fopenapi.json",
     "/v1/images/files/..%5C..%5Cwin.ini", "/v1/images/files/%00.png", "/v1/images/files/" + "a" * 5000 + ".png",
     "/v1/images/files/0123456789abcdef0123456789abcdef.png%2F..%2F..%2F", "/v1/images/files/%2Fetc%2Fpasswd",
     "/v1/images/files/../../../etc/passwd", "/v1/images/files/.png", "/v1/images/files/ABCDEF0123456789ABCDEF0123456789.png"],
)  # fmt: skip
def test_output_file_urls_serve_only_generated_images(http: httpx.Client, raw_path: str) -> None:
    response = http.get(httpx.URL(str(http.base_url)).copy_with(raw_path=raw_path.encode()))
    assert response.status_code in (400, 404), (raw_path, response.status_code, response.text[:300])
    error_of(response)
    assert "root:" not in response.text


@pytest.mark.parametrize(
    "model", ["../../../../etc/passwd", "/etc/passwd", "file:///tmp/evil.gguf", "smollm2/../../x", "\x00"]
)
def test_model_fields_never_load_anything(http: httpx.Client, shared_data: Path, model: str) -> None:
    """A request's `model` names a model the server serves, never a file: anything else is a 404."""
    before = http.get("/v1/models").json()
    chat = http.post(CHAT, json={"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
    completion = http.post("/v1/completions", json={"model": model, "prompt": "hi", "max_tokens": 2})
    image = http.post(
        "/v1/images/generations", json={"model": model, "prompt": "x", "size": "64x64", "sample_steps": 1}
    )
    audio = http.post(
        "/v1/audio/transcriptions",
        files={"file": ("jfk.flac", (shared_data / "jfk.flac").read_bytes())},
        data={"model": model},
    )
    for response in (chat, completion, image, audio):
        assert error_of(response, 404)["code"] == "model_not_found"
        assert "passwd" not in response.text.replace(model, "") and "root:" not in response.text
    assert http.get("/v1/models").json() == before


# --- uploads ---------------------------------------------------------------------------------------

SCRIPT = b"#!/bin/sh\ntouch /tmp/nexa-pwned\n<script>alert('pwned')</script>\n"


def test_uploads_are_never_executed_nor_echoed(http: httpx.Client, tmp_path: Path) -> None:
    marker = Path("/tmp/nexa-pwned")
    for name in ("run.sh", "page.html", "x.py", "jfk.flac"):
        response = http.post("/v1/audio/transcriptions", files={"file": (name, SCRIPT, "application/x-sh")})
        error_of(response, 400)
        assert b"pwned" not in response.content and b"<script>" not in response.content
    as_image = http.post("/v1/img2img", json={"prompt": "x", **SMALL_IMAGE, "image": base64.b64encode(SCRIPT).decode()})
    error_of(as_image, 400)
    assert b"pwned" not in as_image.content
    assert not marker.exists()


def test_an_uploaded_image_is_never_served_back_raw(http: httpx.Client) -> None:
    """A valid PNG with a script appended: the service decodes it and serves only a fresh PNG it made."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 10, 10)).save(buffer, format="PNG")
    polyglot = buffer.getvalue() + b"<script>alert('pwned')</script>"
    response = http.post(
        "/v1/img2img", json={"prompt": "x", **SMALL_IMAGE, "image": base64.b64encode(polyglot).decode(), "seed": 1}
    )
    assert response.status_code == 200, response.text
    made = response.json()["data"][0]
    served = http.get(made["url"])
    assert served.status_code == 200
    assert served.headers["content-type"] == "image/png"
    assert served.content != polyglot and b"<script>" not in served.content
    assert served.content == base64.b64decode(made["base64"])
