"""Unloading a model gives its memory back, for a text, an audio and an image model: the RSS of the
service (with its worker processes) after unloading is back within 10% (or 30 MiB) of what it was
before the load, cycle after cycle. Text models run in the service's process (llama.cpp frees what
it took); Whisper and diffusers models run in worker processes, because CTranslate2 and torch keep
memory in the process after a model is freed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from conftest import TIMEOUT
from support import service_spec

from nexa_cli.supervisor import Supervisor

MIB = 1024 * 1024
CASES = {
    "text": ("smollm2", {"NEXA_TEXT_MODEL": "smollm2"}),
    "audio": ("whisper-tiny.en", {"NEXA_AUDIO_MODEL": "whisper-tiny.en"}),
    "image": ("tiny-sd", {"NEXA_IMAGE_MODEL": "tiny-sd"}),
}
WORK = {
    "text": lambda c, shared: c.post("/v1/completions", json={"prompt": "Hello", "max_tokens": 8}),
    "audio": lambda c, shared: c.post("/v1/audio/transcriptions", files={"file": ("j.flac", (shared / "jfk.flac").read_bytes())}),
    "image": lambda c, shared: c.post("/v1/txt2img", json={"prompt": "x", "width": 128, "height": 128, "sample_steps": 2}),
}  # fmt: skip


def tree_rss(pid: int) -> int:
    """The resident memory of the service and every process it started (its model workers)."""
    root = psutil.Process(pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)] if p.is_running())


def settle(pid: int) -> int:
    """RSS once it stops moving (a worker takes a moment to exit; the allocator to trim)."""
    last = tree_rss(pid)
    for _ in range(50):
        time.sleep(0.2)
        now = tree_rss(pid)
        if abs(now - last) < 2 * MIB:
            return now
        last = now
    return last


@pytest.fixture(params=list(CASES), ids=list(CASES))
def service(request: pytest.FixtureRequest, tmp_path: Path, tiny_sd: Path) -> Iterator[tuple[str, str, int]]:
    modality = request.param
    _, env = CASES[modality]
    spec = service_spec(modality, {**env, f"NEXA_{modality.upper()}_THREADS": "1"}, name=f"{modality}-memory")
    with Supervisor(tmp_path / "logs") as supervisor:
        child = supervisor.start(spec)
        supervisor.wait_ready(child, 180)
        yield modality, spec.url, child.process.pid


def test_unloading_gives_the_memory_back(service: tuple[str, str, int], shared_data: Path) -> None:
    modality, url, pid = service
    model = CASES[modality][0]
    figures = []
    with httpx.Client(base_url=url, timeout=TIMEOUT) as client:
        assert client.post("/v1/operator/models/unload", json={"model": model}).status_code == 200
        for _ in range(2):
            before = settle(pid)
            assert client.post("/v1/operator/models/load", json={"model": model}).status_code == 200
            assert WORK[modality](client, shared_data).status_code == 200
            loaded = settle(pid)
            unloaded_answer = client.post("/v1/operator/models/unload", json={"model": model})
            assert unloaded_answer.json()["state"] == "available"
            after = settle(pid)
            figures.append((before, loaded, after))
    report = "; ".join(f"before {b / MIB:.0f} MiB, loaded {m / MIB:.0f} MiB, unloaded {a / MIB:.0f} MiB"
                       for b, m, a in figures)  # fmt: skip
    print(f"\n{modality} ({model}) RSS per cycle: {report}")
    for before, loaded, after in figures:
        assert loaded - before > 5 * MIB, "the model did take memory while loaded"
        assert abs(after - before) <= max(0.10 * before, 30 * MIB), report
