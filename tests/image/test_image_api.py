"""The image service over real HTTP with the tiny pipeline: txt2img, img2img, OpenAI's images API,
saved outputs and validation."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from image_helpers import SMALL, error_of, png_of, size_of

from nexa_cli.supervisor import Supervisor


@pytest.fixture(scope="module")
def http(image_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=image_url, timeout=120) as client:
        yield client


def txt2img(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = http.post("/v1/txt2img", json={"prompt": "a lighthouse at dusk", **SMALL, **fields})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert isinstance(body["created"], float)
    assert len(body["data"]) == 1
    return body["data"][0]


@pytest.fixture(scope="module")
def image_output_dir(image_url: str, supervisor: Supervisor) -> Path:
    child = next(c for c in supervisor.children if c.spec.name == "image-service")
    return Path(child.spec.env["NEXA_IMAGE_OUTPUT_DIR"])


@pytest.fixture(scope="module")
def input_png(http: httpx.Client, image_input_dir: Path) -> bytes:
    """A PNG made by the service, also saved as input.png in its input folder."""
    png = png_of(txt2img(http, seed=7)["base64"])
    (image_input_dir / "input.png").write_bytes(png)
    return png


def test_ready_models_and_metrics(http: httpx.Client) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert http.get("/ready").json()["status"] == "ready"
    models = http.get("/v1/models").json()["data"]
    assert [(m["id"], m["modality"], m["backend"]) for m in models] == [("tiny-sd", "image", "diffusers")]
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/v1/txt2img", "/v1/img2img", "/v1/images/generations", "/v1/images/files/{name}"} <= set(paths)
    assert set(paths["/v1/img2img"]["post"]["requestBody"]["content"]) == {"application/json", "multipart/form-data"}
    txt2img(http, seed=1)
    metrics = http.get("/metrics").text
    for name in (
        "nexa_image_images_total",
        "nexa_image_steps_total",
        "nexa_image_generation_seconds_bucket",
        "nexa_image_steps_per_second",
        "nexa_image_queue_depth",
        "nexa_http_requests_total",
    ):
        assert name in metrics, name


def test_txt2img_png_of_the_asked_size_downloadable_by_url(http: httpx.Client) -> None:
    item = txt2img(http, width=64, height=96, seed=3)
    png = png_of(item["base64"])
    assert size_of(png) == (64, 96)
    assert item["seed"] == 3
    # Absolute, as OpenAI's are: this service's own address as the client used it.
    assert item["url"].startswith(str(http.base_url).rstrip("/") + "/v1/images/files/"), item["url"]
    assert item["url"].endswith(".png")
    download = http.get(item["url"])
    assert download.status_code == 200
    assert download.headers["content-type"] == "image/png"
    assert download.content == png


def test_same_seed_same_bytes_other_seed_other_bytes(http: httpx.Client) -> None:
    first = png_of(txt2img(http, seed=42)["base64"])
    again = png_of(txt2img(http, seed=42)["base64"])
    other = png_of(txt2img(http, seed=43)["base64"])
    assert first == again
    assert first != other


def test_no_seed_reports_the_seed_that_reproduces_it(http: httpx.Client) -> None:
    item = txt2img(http)
    assert isinstance(item["seed"], int)
    assert png_of(txt2img(http, seed=item["seed"])["base64"]) == png_of(item["base64"])


def test_img2img_from_upload_base64_and_image_path_agree(http: httpx.Client, input_png: bytes) -> None:
    fields = {"prompt": "the same, at night", **SMALL, "seed": 11, "strength": 0.5}
    uploaded = http.post(
        "/v1/img2img", data={k: str(v) for k, v in fields.items()}, files={"image": ("in.png", input_png, "image/png")}
    )
    as_base64 = http.post("/v1/img2img", json={**fields, "image": base64.b64encode(input_png).decode()})
    as_data_url = http.post(
        "/v1/img2img", json={**fields, "image": "data:image/png;base64," + base64.b64encode(input_png).decode()}
    )
    by_path = http.post("/v1/img2img", json={**fields, "image_path": "input.png"})
    pngs = []
    for response in (uploaded, as_base64, as_data_url, by_path):
        assert response.status_code == 200, response.text
        item = response.json()["data"][0]
        png = png_of(item["base64"])
        assert size_of(png) == (64, 64)
        assert http.get(item["url"]).content == png
        pngs.append(png)
    # One input, one seed: the same image whichever way the input arrived, and not the input itself.
    assert len(set(pngs)) == 1
    assert pngs[0] != input_png


def test_img2img_resizes_the_input_to_the_asked_size(http: httpx.Client, input_png: bytes) -> None:
    response = http.post(
        "/v1/img2img",
        json={"prompt": "wider", "width": 96, "height": 64, "sample_steps": 2, "seed": 1, "image_path": "input.png"},
    )
    assert response.status_code == 200, response.text
    assert size_of(png_of(response.json()["data"][0]["base64"])) == (96, 64)


def test_image_path_escapes_are_refused(
    http: httpx.Client, image_input_dir: Path, input_png: bytes, tmp_path: Path
) -> None:
    outside = tmp_path / "secret.png"
    outside.write_bytes(input_png)  # a real image: refused for where it is, not for what it is
    (image_input_dir / "sub").mkdir(exist_ok=True)
    escape = image_input_dir / "escape.png"
    escape.unlink(missing_ok=True)
    escape.symlink_to(outside)
    inside_link = image_input_dir / "alias.png"
    inside_link.unlink(missing_ok=True)
    inside_link.symlink_to(image_input_dir / "input.png")
    for image_path in (
        "../secret.png",
        "sub/../input.png",
        "../" * 12 + str(outside).lstrip("/"),
        str(outside),
        "escape.png",
        "/etc/passwd",
        "missing.png",
    ):
        response = http.post("/v1/img2img", json={"prompt": "x", **SMALL, "image_path": image_path})
        assert response.status_code == 400, (image_path, response.text)
        error = error_of(response)
        assert error["param"] == "image_path"
        assert str(tmp_path) not in error["message"] and str(image_input_dir) not in error["message"]
    # A link that stays inside the folder is fine, as is an absolute path into the folder.
    for image_path in ("alias.png", str(image_input_dir / "input.png")):
        response = http.post("/v1/img2img", json={"prompt": "x", **SMALL, "image_path": image_path})
        assert response.status_code == 200, (image_path, response.text)


@pytest.mark.parametrize(
    "body",
    [
        {"image": "not base64 !!"},
        {"image": base64.b64encode(b"not an image").decode()},
        {},
        {"image": "aGVsbG8=", "image_path": "input.png"},
        {"image_path": "input.png", "strength": 0.1},  # 2 steps x 0.1 runs no step at all
        {"image_path": "input.png", "strength": 0},
    ],
)
def test_img2img_bad_inputs_are_400(http: httpx.Client, input_png: bytes, body: dict[str, Any]) -> None:
    response = http.post("/v1/img2img", json={"prompt": "x", **SMALL, **body})
    assert response.status_code == 400, response.text
    assert error_of(response)["type"] == "invalid_request_error"


def test_openai_client_images_generate(image_url: str, http: httpx.Client) -> None:
    client = openai.OpenAI(base_url=f"{image_url}/v1", api_key="unused", max_retries=0)
    extra = {"sample_steps": 2, "seed": 5}
    as_b64 = client.images.generate(
        prompt="a red bicycle", size="64x64", n=2, response_format="b64_json", extra_body=extra
    )
    assert len(as_b64.data) == 2
    pngs = [png_of(image.b64_json or "") for image in as_b64.data]
    assert all(size_of(png) == (64, 64) for png in pngs)
    assert pngs[0] != pngs[1]  # image i uses seed + i

    as_url = client.images.generate(prompt="a red bicycle", size="64x64", n=2, response_format="url", extra_body=extra)
    urls = [image.url or "" for image in as_url.data]
    assert all(url.startswith(str(http.base_url).rstrip("/") + "/v1/images/files/") for url in urls), urls
    # The same request as above (a batch of two gives each image the same numerics): the same PNGs.
    assert [http.get(url).content for url in urls] == pngs

    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="a red bicycle", size="60x64", extra_body=extra)
    assert "multiple of 8" in caught.value.message


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"width": 60}, "width"),
        ({"height": 100}, "height"),  # a multiple of 4, not 8
        ({"width": 4096}, "width"),  # above the configured maximum
        ({"height": 0}, "height"),
        ({"width": 8}, "width"),  # below the configured minimum
        ({"sample_steps": 0}, "sample_steps"),
        ({"sample_steps": 101}, "sample_steps"),  # above the configured maximum
        ({"sample_steps": 100000}, "sample_steps"),
        ({"cfg_scale": 31}, "cfg_scale"),
        ({"cfg_scale": -1}, "cfg_scale"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 4001}, "prompt"),
        ({"seed": -1}, "seed"),
        ({"width": "wide"}, "width"),
    ],
)
def test_bad_requests_are_400_and_the_service_stays_up(http: httpx.Client, fields: dict[str, Any], param: str) -> None:
    response = http.post("/v1/txt2img", json={"prompt": "x", **SMALL, **fields})
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"
    assert http.get("/health").status_code == 200


def test_bad_openai_sizes_are_400(http: httpx.Client) -> None:
    for size in ("64", "64x", "Auto", "63x64", "64x4096", "99999x64"):  # "auto" is the native size
        response = http.post("/v1/images/generations", json={"prompt": "x", "size": size, "sample_steps": 2})
        assert response.status_code == 400, (size, response.text)
        assert error_of(response)["param"] == "size"
    txt2img(http, seed=2)  # still serving


@pytest.mark.parametrize(
    "name",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "..%2Finput.png",
        "%2Fetc%2Fpasswd",
        "....png",
        "x.png",
        "..",
        "0123456789abcdef0123456789abcdef.png%2F..%2F..%2Fx",
        "0123456789ABCDEF0123456789ABCDEF.png",
    ],
)
def test_file_route_refuses_names_it_did_not_make(http: httpx.Client, name: str) -> None:
    response = http.get(f"/v1/images/files/{name}")
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"].startswith("application/json")
    assert "root:" not in response.text


def test_file_route_missing_image_is_404(http: httpx.Client) -> None:
    response = http.get("/v1/images/files/0123456789abcdef0123456789abcdef.png")
    assert response.status_code == 404
    assert error_of(response)["code"] == "image_not_found"


def test_outputs_are_saved_privately_and_pruned(http: httpx.Client, image_output_dir: Path) -> None:
    item = txt2img(http, seed=9)
    saved = image_output_dir / item["url"].rsplit("/", 1)[1]
    assert saved.read_bytes() == png_of(item["base64"])
    assert saved.stat().st_mode & 0o077 == 0  # outputs may be personal: owner-only
    assert not list(image_output_dir.glob(".partial-*"))
