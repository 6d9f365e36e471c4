"""`nexa server smollm2` in docker mode, as a user runs it: compose with the text profile only,
the published port from --port, a real chat request, and Ctrl-C stopping the stack; and where no
Docker is found, the same command saying so and serving in local mode."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import openai
from compose_helpers import REPO, Compose, require_docker

from nexa_cli.supervisor import free_port


def _lines(process: subprocess.Popen[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], text: str, timeout_s: float, seen: list[str]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            continue
        seen.append(line)
        if text in line:
            return True
    return False


def _start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "nexa_cli", "server", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )


def test_without_docker_nexa_server_says_so_and_serves_in_local_mode(tmp_path: Path) -> None:
    port = free_port()
    # A PATH with no `docker` on it: the machine as a user without Docker has it.
    env = {**os.environ, "PATH": str(tmp_path), "NEXA_CACHE": str(tmp_path / "cache"), "PYTHONUNBUFFERED": "1"}
    process = _start(["--port", str(port), "smollm2"], env)
    seen: list[str] = []
    try:
        assert _wait_for(_lines(process), "nexa: serving at", 180, seen), "\n".join(seen[-40:])
        assert any("Docker is not installed; using local mode" in line for line in seen), "\n".join(seen)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        answer = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Hi"}], max_tokens=4
        )
        assert answer.choices[0].message.content is not None
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)


def test_nexa_server_smollm2_in_docker_mode_answers_chat_and_ctrl_c_stops_the_stack(tmp_path: Path) -> None:
    require_docker()
    project = f"nexa-cli-{os.getpid()}"
    compose = Compose(project)
    port = free_port()
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "NEXA_COMPOSE_DIR": str(REPO), "PYTHONUNBUFFERED": "1"}
    process = _start(["--port", str(port), "smollm2"], env)
    seen: list[str] = []
    lines = _lines(process)
    try:
        assert _wait_for(lines, "nexa: serving at", 600, seen), "\n".join(seen[-40:])
        assert any("docker mode" in line for line in seen), "\n".join(seen[-40:])
        running = set(compose.run("ps", "--services", "--status", "running").stdout.split())
        assert running == {"router", "text"}, "only the text profile and the router should run"

        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0, timeout=120)
        answer = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Say hello."}], max_tokens=8
        )
        assert answer.choices[0].message.content

        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(120) == 0
        assert compose.run("ps", "--all", "-q").stdout.strip() == "", "Ctrl-C should remove the containers"
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        compose.down()
