"""The kit's model pool in-process, on the real Whisper model: loading happens after the app is up
(so /health answers at once and /ready says "loading"), and a model that cannot be served is
reported, with the reason, from the start."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from nexa_audio.engine import WhisperEngine
from nexa_audio.settings import Settings
from nexa_common.catalogue import Backend, ResolvedModel
from nexa_common.kit.models import Engine, ModelPool
from nexa_common.kit.service import ServiceState, service_app
from nexa_common.modalities import Modality, spec


def app_with(settings: Settings, gate: threading.Event | None = None) -> TestClient:
    def load(model: ResolvedModel) -> Engine:
        if gate is not None:
            assert gate.wait(60), "the test never opened the gate"
        return WhisperEngine(model.path, settings)

    audio = spec(Modality.AUDIO)
    pool = ModelPool(audio, settings, {Backend.CT2: load})
    state = ServiceState(audio, settings, pool, CollectorRegistry())
    return TestClient(service_app(state, title="t", description="d", routers=[]))


def test_health_answers_while_the_model_loads_in_the_background(tmp_path: Path) -> None:
    gate = threading.Event()
    with app_with(Settings(cache_dir=tmp_path, threads=1), gate) as client:
        assert client.get("/health").status_code == 200
        ready = client.get("/ready")
        assert ready.status_code == 503 and ready.json() == {"status": "loading", "model": "whisper-tiny.en"}
        (loading,) = client.get("/v1/models").json()["data"]
        assert (loading["id"], loading["state"]) == ("whisper-tiny.en", "loading")
        gate.set()
        deadline = time.monotonic() + 60
        while client.get("/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/ready").json() == {"status": "ready", "model": "whisper-tiny.en"}
        (card,) = client.get("/v1/models").json()["data"]
        assert (card["id"], card["modality"], card["backend"], card["state"]) == (
            "whisper-tiny.en",
            "audio",
            "ct2",
            "loaded",
        )
        assert card["capabilities"] == ["transcription", "translation"] and card["aliases"] == ["whisper-1"]


def test_models_that_cannot_be_served_are_failed_from_the_start_with_the_reason(tmp_path: Path) -> None:
    for model, reason in [
        ("smollm2", "'smollm2' is a text model, not an audio model"),
        ("faster-whisper-small", "nexa pull faster-whisper-small"),
        (str(tmp_path / "missing"), "neither a catalogue model nor an existing file"),
    ]:
        with app_with(Settings(model=model, cache_dir=tmp_path)) as client:
            ready = client.get("/ready")
            assert ready.status_code == 503 and ready.json()["status"] == "failed"
            assert reason in ready.json()["detail"]
            assert client.get("/health").status_code == 200
