"""Models in worker processes (audio and image): a worker that dies takes its model with it, not the
service; the next request loads the model again in a new worker."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import psutil
from conftest import TIMEOUT
from support import service_spec

from nexa_cli.supervisor import Supervisor


def test_a_killed_worker_unloads_its_model_and_the_next_request_loads_it_again(
    tmp_path: Path, shared_data: Path, nexa_cache: Path
) -> None:
    env = {"NEXA_AUDIO_MODEL": "whisper-tiny.en", "NEXA_AUDIO_LOAD_RETRY_S": "0", "NEXA_AUDIO_THREADS": "1"}
    spec = service_spec("audio", env, name="audio-workers")
    jfk = (shared_data / "jfk.flac").read_bytes()
    with Supervisor(tmp_path / "logs") as supervisor:
        child = supervisor.start(spec)
        supervisor.wait_ready(child, 180)
        with httpx.Client(base_url=spec.url, timeout=TIMEOUT) as client:
            assert client.post("/v1/audio/transcriptions", files={"file": ("j.flac", jfk)}).status_code == 200
            (worker,) = psutil.Process(child.process.pid).children()
            os.kill(worker.pid, signal.SIGKILL)  # as the OOM killer would
            for _ in range(100):  # bounded: the pool notices within its watch interval
                models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
                if models["whisper-tiny.en"]["state"] != "loaded":
                    break
                time.sleep(0.1)
            assert models["whisper-tiny.en"]["state"] in ("failed", "available")
            assert client.get("/ready").status_code == 200  # the service itself is fine
            again = client.post("/v1/audio/transcriptions", files={"file": ("j.flac", jfk)})
            assert again.status_code == 200, again.text
            assert "ask not what your country" in again.json()["text"].lower()
            (new_worker,) = psutil.Process(child.process.pid).children()
            assert new_worker.pid != worker.pid
            evictions = client.get("/metrics").text
            assert 'nexa_audio_model_evictions_total{model="whisper-tiny.en",reason="died"} 1.0' in evictions
        assert child.alive()
