"""Loading paths of the engine, in-process with the tiny pipeline: a local folder given by path and a
hub-cache folder (models--org--name/snapshots/<revision>), as `NEXA_IMAGE_MODEL` may name them; the
tiny builder; and a model that cannot load."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from image_helpers import size_of

from nexa_common import catalogue
from nexa_image.app import create_app
from nexa_image.diffusers_engine import DiffusersEngine, diffusers_folder
from nexa_image.engine import GenerationJob
from nexa_image.images import encode_png
from nexa_image.settings import Settings
from nexa_image.tiny import build_tiny_pipeline


@pytest.fixture(scope="module")
def tiny_folder(tiny_sd: Path) -> Path:
    return catalogue.resolve("tiny-sd", tiny_sd).path


def test_hub_cache_layout_resolves_to_its_snapshot(tiny_folder: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "models--org--tiny" / "snapshots" / "0123abcd"
    shutil.copytree(tiny_folder, snapshot)
    assert diffusers_folder(tmp_path / "models--org--tiny") == snapshot
    assert diffusers_folder(snapshot) == snapshot
    with pytest.raises(FileNotFoundError):
        diffusers_folder(tmp_path)


def test_local_folder_loads_and_txt2img_img2img_share_weights(tiny_folder: Path, tmp_path: Path) -> None:
    local = tmp_path / "my-model"
    shutil.copytree(tiny_folder, local)
    resolved = catalogue.resolve(str(local), tmp_path / "cache")
    settings = Settings(num_threads=1, max_concurrency=2)
    engine = DiffusersEngine.load(resolved, settings)
    assert engine.vae_scale_factor == 8
    pairs = engine.pipelines()
    assert len(pairs) == 2
    weights = {id(pipe.unet) for pair in pairs for pipe in pair}
    assert len(weights) == 1  # four pipelines, one UNet
    assert len({id(pipe.scheduler) for txt, _ in pairs for pipe in (txt,)}) == 2  # a scheduler per slot

    job = GenerationJob("a cat", "", 64, 96, 2, 7.0, [3])
    first = engine.generate(job)
    assert [image.size for image in first.images] == [(64, 96)]
    assert encode_png(engine.generate(job).images[0]) == encode_png(first.images[0])
    edited = engine.generate(GenerationJob("a dog", "", 64, 96, 2, 7.0, [3], first.images[0], 0.5))
    assert edited.steps_run == 1
    assert size_of(encode_png(edited.images[0])) == (64, 96)


def test_tiny_builder_is_seeded_and_replaces_atomically(tmp_path: Path, tiny_folder: Path) -> None:
    dest = tmp_path / "built" / "tiny-sd"
    build_tiny_pipeline(dest)
    build_tiny_pipeline(dest)  # over an existing build: replaced, nothing left beside it
    assert sorted(p.name for p in dest.parent.iterdir()) == ["tiny-sd"]
    assert (dest / "model_index.json").is_file()
    for weights in ("unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors"):
        assert (dest / weights).read_bytes() == (tiny_folder / weights).read_bytes()  # seeded: same weights


@pytest.mark.parametrize(("model", "reason"), [("no-such-model", "no-such-model"), ("smollm2", "not an image model")])
def test_a_model_that_cannot_load_leaves_the_service_up_and_not_ready(model: str, reason: str, tmp_path: Path) -> None:
    settings = Settings(model=model, cache_dir=tmp_path, output_dir=tmp_path / "out", num_threads=1)
    with TestClient(create_app(settings)) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["status"] == "failed" and reason in ready.json()["detail"]
        refused = client.post("/v1/txt2img", json={"prompt": "x", "width": 64, "height": 64, "sample_steps": 1})
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "model_failed"
        assert client.get("/v1/models").json()["data"] == []
