"""Limits on a private copy of the image service: one request at a time with no queue (429), a full
disk (507, simulated with a file-size limit on the process), no input folder; and output pruning."""

from __future__ import annotations

import dataclasses
import os
import re
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from image_helpers import SMALL, error_of, png_of, size_of
from support import service_spec

from nexa_cli.supervisor import Supervisor
from nexa_image.outputs import OutputStore

# Bigger than a 64x64 PNG of noise (~12 kB), smaller than a 128x128 one (~48 kB): writes past it fail
# with EFBIG, as they would with ENOSPC on a full disk.
FILE_SIZE_LIMIT = 24 * 1024
_LIMITED = (
    "import resource, runpy; "
    f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT})); "
    "runpy.run_module('nexa_image', run_name='__main__')"
)


@pytest.fixture(scope="module")
def limited_outputs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("image-limited-outputs")


@pytest.fixture(scope="module")
def limited(tiny_sd: Path, limited_outputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    env = {
        "NEXA_IMAGE_MODEL": "tiny-sd",
        "NEXA_IMAGE_MAX_CONCURRENCY": "1",
        "NEXA_IMAGE_QUEUE_SIZE": "0",
        "NEXA_IMAGE_OUTPUT_DIR": str(limited_outputs),
        "NEXA_IMAGE_INPUT_DIR": "",
        "NEXA_IMAGE_NUM_THREADS": "1",  # steadier timing on a shared 2-core machine
        "NEXA_IMAGE_MAX_STEPS": "1000",  # the setting's ceiling, above what tiny-sd's scheduler can place
    }
    spec = service_spec("image", env, name="image-limited")
    spec = dataclasses.replace(spec, argv=[sys.executable, "-c", _LIMITED])
    with Supervisor(tmp_path_factory.mktemp("image-limited-logs")) as supervisor:
        supervisor.wait_ready(supervisor.start(spec), 180)
        with httpx.Client(base_url=spec.url, timeout=120) as client:
            yield client


def metric(http: httpx.Client, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", http.get("/metrics").text, re.M)
    return float(found.group(1)) if found else 0.0


def test_full_queue_is_429_and_full_disk_is_507_and_the_service_stays_up(
    limited: httpx.Client, limited_outputs: Path
) -> None:
    big = {"prompt": "a long one", "width": 128, "height": 128, "sample_steps": 10, "seed": 1}
    with ThreadPoolExecutor(1) as pool:
        running = pool.submit(limited.post, "/v1/txt2img", json=big)
        for _ in range(600):  # at most ~30 s for the first request to start
            if metric(limited, "nexa_image_running") == 1 or running.done():
                break
            time.sleep(0.05)
        assert not running.done(), "the first request finished before a second could be sent"
        refused = limited.post("/v1/txt2img", json={"prompt": "x", **SMALL})
        first = running.result(timeout=120)

    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert error_of(refused)["type"] == "rate_limit_error"

    # The 128x128 PNG is over the file-size limit: no space to save it.
    assert first.status_code == 507, first.text
    assert error_of(first)["type"] == "insufficient_storage"
    assert "/" not in error_of(first)["message"].replace("b64_json", "")
    assert not list(limited_outputs.iterdir()), "a partial file was left behind"

    # Still up: a small image saves, and b64_json output never touches the disk.
    small = limited.post("/v1/txt2img", json={"prompt": "x", **SMALL, "seed": 1})
    assert small.status_code == 200, small.text
    assert limited.get(small.json()["data"][0]["url"]).content == png_of(small.json()["data"][0]["base64"])
    big_b64 = limited.post(
        "/v1/images/generations",
        json={"prompt": "x", "size": "128x128", "sample_steps": 1, "response_format": "b64_json"},
    )
    assert big_b64.status_code == 200, big_b64.text
    assert size_of(png_of(big_b64.json()["data"][0]["b64_json"])) == (128, 128)


def test_more_steps_than_the_scheduler_can_place_is_a_400_not_a_failed_generation(limited: httpx.Client) -> None:
    # tiny-sd's DDIM (1000 training timesteps, steps_offset 1) places at most 999 steps; diffusers itself
    # would fail mid-loop with an IndexError at 1000.
    body = {"prompt": "x", "width": 64, "height": 64, "sample_steps": 1000}
    response = limited.post("/v1/txt2img", json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["param"], error["code"]) == ("sample_steps", "invalid_steps")
    assert "scheduler allows 1 to 999" in error["message"]
    assert metric(limited, "nexa_image_generation_failures_total") == 0
    ok = limited.post("/v1/txt2img", json={**body, "sample_steps": 2})
    assert ok.status_code == 200, ok.text


def test_image_path_is_refused_without_an_input_folder(limited: httpx.Client) -> None:
    response = limited.post("/v1/img2img", json={"prompt": "x", **SMALL, "image_path": "input.png"})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "image_path_disabled"
    assert error["param"] == "image_path"


def test_output_store_prunes_by_count_and_age(tmp_path: Path) -> None:
    store = OutputStore(tmp_path / "outputs", max_kept=2, max_age_s=3600)
    assert (tmp_path / "outputs").stat().st_mode & 0o777 == 0o700
    names = []
    for index in range(3):
        names.append(store.save(b"png %d" % index))
        os.utime(tmp_path / "outputs" / names[-1], (time.time() - 10 + index,) * 2)  # distinct, ordered mtimes
    store.prune()
    assert store.read(names[0]) is None  # the oldest went when the third arrived
    assert store.read(names[1]) == b"png 1" and store.read(names[2]) == b"png 2"

    old = time.time() - 7200
    os.utime(tmp_path / "outputs" / names[1], (old, old))
    (tmp_path / "outputs" / "notes.txt").write_text("not ours")
    assert store.prune() == 1
    assert store.read(names[1]) is None and store.read(names[2]) == b"png 2"
    assert (tmp_path / "outputs" / "notes.txt").exists()  # only files it made are pruned
    for bad in ("../notes.txt", "notes.txt", names[2].upper(), names[2] + "/.."):
        assert store.read(bad) is None
