"""`nexa server` in local mode, as a user runs it: real processes, real models, real HTTP."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import pytest

from nexa_cli.supervisor import free_port


@dataclass
class ServerRun:
    process: subprocess.Popen[str]
    cache: str
    lines: queue.Queue[str] = field(default_factory=queue.Queue)
    seen: list[str] = field(default_factory=list)

    def wait_for(self, text: str, timeout_s: float) -> str | None:
        """The first output line containing `text`, or None if the process ended or time ran out."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None and self.lines.empty():
                    return None
                continue
            self.seen.append(line)
            if text in line:
                return line
        return None

    def output(self, timeout_s: float = 10.0) -> str:
        """Everything the server printed, once it has exited (bounded wait for the pipe to drain)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                self.seen.append(self.lines.get(timeout=0.2))
            except queue.Empty:
                if self.process.poll() is not None:
                    break
        return "\n".join(self.seen)

    def descendants(self) -> list[psutil.Process]:
        """Processes started by this server: they inherit its private NEXA_CACHE, so they are found even
        after the server itself exited (when they would have been re-parented)."""
        return [p for p in psutil.process_iter() if p.pid != self.process.pid and _cache_of(p) == self.cache]


def _cache_of(process: psutil.Process) -> str | None:
    try:
        return process.environ().get("NEXA_CACHE")
    except (psutil.Error, OSError):
        return None


@contextmanager
def nexa_server(*args: str, cache: Path) -> Iterator[ServerRun]:
    env = {**os.environ, "NEXA_CACHE": str(cache), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "nexa_cli", "server", "--local", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    run = ServerRun(process, str(cache))

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            run.lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    try:
        yield run
    finally:
        # A failed test must not leave servers behind: the services run in sessions of their own,
        # so they are found by their private NEXA_CACHE rather than by process group.
        leftovers = run.descendants()
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(30)
        for leftover in leftovers:
            with contextlib.suppress(psutil.Error):
                leftover.kill()


def _interrupt_and_check_nothing_is_left(run: ServerRun) -> None:
    children = run.descendants()
    assert children, "nexa server should have started child processes"
    run.process.send_signal(signal.SIGINT)
    assert run.process.wait(60) == 0
    _, alive = psutil.wait_procs(children, timeout=15)
    assert not alive, f"processes left after Ctrl-C: {[p.pid for p in alive]}"


def test_nexa_server_smollm2_answers_chat_through_router_and_ctrl_c_stops_everything(tmp_path: Path) -> None:
    port = free_port()
    with nexa_server("--port", str(port), "smollm2", cache=tmp_path) as run:
        assert run.wait_for("serving at", 240), "\n".join(run.seen)
        base = f"http://127.0.0.1:{port}"
        assert httpx.get(base + "/health", timeout=10).json() == {"status": "ok"}
        reply = httpx.post(
            base + "/v1/chat/completions",
            json={
                "messages": [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}],
                "max_tokens": 24,
                "temperature": 0,
            },
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["object"] == "chat.completion"
        assert body["choices"][0]["message"]["content"].strip()
        assert "Paris" in body["choices"][0]["message"]["content"]
        _interrupt_and_check_nothing_is_left(run)


def test_nexa_server_serves_several_models_of_one_modality(tmp_path: Path, shared_data: Path) -> None:
    port = free_port()
    with nexa_server("--port", str(port), "smollm2", "gemma3-270m", "whisper-tiny.en", cache=tmp_path) as run:
        assert run.wait_for("serving at", 600), "\n".join(run.seen)
        base = f"http://127.0.0.1:{port}"
        models = {m["id"]: m for m in httpx.get(base + "/v1/models", timeout=10).json()["data"]}
        assert {"smollm2", "gemma3-270m", "whisper-tiny.en"} <= set(models)
        assert models["smollm2"]["state"] == "loaded" and models["gemma3-270m"]["state"] == "available"
        for model in ("gemma3-270m", "smollm2"):  # one text service, each request answered by its model
            reply = httpx.post(
                base + "/v1/completions",
                json={"model": model, "prompt": "The capital of France is", "max_tokens": 8, "temperature": 0},
                timeout=300,
            )
            assert reply.status_code == 200 and reply.json()["model"] == model, reply.text
        transcript = httpx.post(
            base + "/v1/audio/transcriptions", files={"file": ("jfk.flac", (shared_data / "jfk.flac").read_bytes())},
            timeout=300,
        )  # fmt: skip
        assert "ask not what your country" in transcript.json()["text"].lower()
        _interrupt_and_check_nothing_is_left(run)


def test_nexa_server_with_no_model_serves_the_embedded_text_and_audio_defaults(tmp_path: Path) -> None:
    port = free_port()
    with nexa_server("--port", str(port), cache=tmp_path) as run:
        assert run.wait_for("serving at", 240), "\n".join(run.seen)
        models = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()
        # The audio service speaks with its default voice beside Whisper.
        assert {m["id"] for m in models["data"]} == {"smollm2", "whisper-tiny.en", "piper-joe"}
        run.process.send_signal(signal.SIGTERM)  # SIGTERM cleans up as Ctrl-C does
        children = run.descendants()
        assert run.process.wait(60) == 0
        _, alive = psutil.wait_procs(children, timeout=15)
        assert not alive


def test_nexa_server_whisper_and_a_voice_serves_both_from_one_audio_service(tmp_path: Path) -> None:
    port = free_port()
    with nexa_server("--port", str(port), "whisper-tiny.en", "piper-joe", cache=tmp_path) as run:
        assert run.wait_for("serving at", 240), "\n".join(run.seen)
        base = f"http://127.0.0.1:{port}"
        models = httpx.get(base + "/v1/models", timeout=10).json()
        assert [m["id"] for m in models["data"]] == ["whisper-tiny.en", "piper-joe"]
        spoken = httpx.post(
            base + "/v1/audio/speech",
            json={"model": "piper-joe", "input": "Ask not what your country can do for you.", "response_format": "wav"},
            timeout=120,
        )
        assert spoken.status_code == 200, spoken.text
        heard = httpx.post(base + "/v1/audio/transcriptions", files={"file": ("a.wav", spoken.content)}, timeout=120)
        assert "your country" in heard.json()["text"].lower()
        assert len([p for p in run.descendants() if "nexa_audio" in " ".join(p.cmdline())]) == 1
        _interrupt_and_check_nothing_is_left(run)


def test_a_component_that_exits_at_start_fails_the_server_with_its_name_and_log(tmp_path: Path) -> None:
    # The router cannot bind a port that is already taken: it exits at once.
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with nexa_server("--port", str(port), "smollm2", cache=tmp_path) as run:
            assert run.process.wait(240) == 1
            output = run.output()
            assert "router exited with code" in output
            assert "address already in use" in output.lower()
            assert not run.descendants()


def test_a_model_that_fails_to_load_fails_the_server_with_the_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + os.urandom(512))
    with nexa_server("--port", str(free_port()), str(broken), cache=tmp_path) as run:
        assert run.process.wait(240) == 1
        output = run.output()
        assert "text" in output and "not ready" in output and "failed" in output
        assert not run.descendants()


@pytest.mark.parametrize("model", ["no-such-model"])
def test_unknown_model_is_refused_before_starting_anything(tmp_path: Path, model: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nexa_cli", "server", "--local", model],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NEXA_CACHE": str(tmp_path)},
    )
    assert result.returncode == 2 and "nexa list" in result.stderr
