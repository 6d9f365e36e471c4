"""Start components as child processes, wait until they are ready, and stop them all cleanly.

Used by `nexa server --local` and by the tests (which start the real services the same way a
user does). Each child runs in its own process group, so stopping it also stops anything it
spawned (uvicorn's reloader, worker threads' helpers), and its output goes to a log file whose
tail is shown when it fails to start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx


class StartupError(RuntimeError):
    """A component exited or never became ready; the message names it and shows its log tail."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:]) or "(empty log)"


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    port: int
    env: Mapping[str, str] = field(default_factory=dict)
    host: str = "127.0.0.1"
    ready_path: str = "/ready"

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"


def python_module(module: str, *args: str) -> list[str]:
    """argv that runs a component's `python -m` entry point with this interpreter."""
    return [sys.executable, "-m", module, *args]


@dataclass
class Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes]
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None


class Supervisor:
    """Owns a set of child processes; `with Supervisor(...)` guarantees they are all gone afterwards."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.children: list[Child] = []

    def start(self, spec: ProcessSpec) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{spec.name}.log"
        env = {**os.environ, **spec.env}
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                spec.argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        child = Child(spec, process, log_path)
        self.children.append(child)
        return child

    def wait_ready(self, child: Child, timeout_s: float = 120.0) -> None:
        """Poll the child's readiness route until 200; raise StartupError if it exits, fails or times out."""
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                code = child.process.poll()
                if code is not None:
                    raise StartupError(
                        f"{child.spec.name} exited with code {code} while starting. Last lines of its log "
                        f"({child.log_path}):\n{log_tail(child.log_path)}"
                    )
                try:
                    response = client.get(child.spec.url + child.spec.ready_path)
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}"
                else:
                    if response.status_code == 200:
                        return
                    last = response.text[:500]
                    if '"failed"' in last:
                        raise StartupError(
                            f"{child.spec.name} is up but not ready: {last}\nLast lines of its log "
                            f"({child.log_path}):\n{log_tail(child.log_path)}"
                        )
                time.sleep(0.1)
        raise StartupError(
            f"{child.spec.name} did not become ready within {timeout_s:.0f} s (last: {last}). Last lines of "
            f"its log ({child.log_path}):\n{log_tail(child.log_path)}"
        )

    def first_exited(self) -> Child | None:
        return next((c for c in self.children if not c.alive()), None)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM every child's process group, then SIGKILL what is left after the timeout."""
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in self.children:
            _reap(child, max(0.1, deadline - time.monotonic()))
        self.children.clear()

    def stop_child(self, child: Child, timeout_s: float = 10.0) -> None:
        """Stop one child (its whole process group) and forget it, leaving the others running."""
        _signal_group(child.process, signal.SIGTERM)
        _reap(child, timeout_s)
        self.children.remove(child)

    def __enter__(self) -> Supervisor:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _reap(child: Child, timeout_s: float) -> None:
    """Wait for a signalled child, SIGKILL it past the timeout, and kill anything it left behind."""
    try:
        child.process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        _signal_group(child.process, signal.SIGKILL)
        child.process.wait(5)
    # The leader is gone; make sure nothing it spawned outlives it.
    _signal_group(child.process, signal.SIGKILL)


def _signal_group(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, sig)
