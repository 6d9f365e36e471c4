"""`nexa server` in docker mode: the repository's compose.yaml with the profiles the models need.

Chosen when Docker and compose v2 answer and `--local` is not given. Each modality is a compose
profile; the model of each service goes in as `NEXA_<X>_MODEL`, `--host/--port` become the
router's published address, and `--gpu` adds compose.cuda.yaml. The command waits until the
router's /ready answers 200, streams the containers' logs, and stops the stack on Ctrl-C or
SIGTERM (`docker compose down`; the model cache volume is kept).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx

from nexa_common import catalogue
from nexa_common.catalogue import LocalSource, ModelError
from nexa_common.modalities import MODALITIES, Modality

COMPOSE_FILE = "compose.yaml"
CUDA_FILE = "compose.cuda.yaml"
PROBE_TIMEOUT_S = 15.0


def compose_dir() -> Path | None:
    """The folder with nexa's compose.yaml: $NEXA_COMPOSE_DIR, else the repository this CLI runs from."""
    candidates = [Path(os.environ["NEXA_COMPOSE_DIR"])] if os.environ.get("NEXA_COMPOSE_DIR") else []
    candidates.append(Path(__file__).resolve().parents[2])
    return next((c for c in candidates if (c / COMPOSE_FILE).is_file()), None)


def unavailable_reason() -> str | None:
    """Why docker mode cannot run here, or None when Docker, compose v2 and compose.yaml are all there."""
    if shutil.which("docker") is None:
        return "Docker is not installed"
    probes = {
        "the Docker daemon does not answer (`docker info` failed)": ["docker", "info"],
        "Docker Compose v2 is not installed (`docker compose version` failed)": ["docker", "compose", "version"],
    }
    for reason, argv in probes.items():
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired):
            return reason
        if done.returncode != 0:
            return reason
    if compose_dir() is None:
        return f"no {COMPOSE_FILE} found (set NEXA_COMPOSE_DIR to the nexa repository)"
    return None


@dataclass
class Stack:
    """One `docker compose` project: the files, profiles and environment every command gets."""

    directory: Path
    profiles: list[str]
    env: dict[str, str]
    gpu: bool = False
    files: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self.files = [COMPOSE_FILE, CUDA_FILE] if self.gpu else [COMPOSE_FILE]

    def argv(self, *args: str) -> list[str]:
        command = ["docker", "compose"]
        for name in self.files:
            command += ["-f", str(self.directory / name)]
        for profile in self.profiles:
            command += ["--profile", profile]
        return [*command, *args]

    def run(self, *args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.argv(*args), env={**os.environ, **self.env}, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]

    def popen(self, *args: str) -> subprocess.Popen[bytes]:
        return subprocess.Popen(self.argv(*args), env={**os.environ, **self.env}, stdin=subprocess.DEVNULL)


def plan(models: list[str], *, onnx: bool) -> dict[Modality, list[str]]:
    """The catalogue models of each modality, its default first (the embedded text and audio
    defaults and the default voice when none is given)."""
    if onnx:
        raise ModelError("ONNX models run in local mode only (the images carry no ONNX Runtime): use --local.")
    names = models or list(catalogue.SERVED_BY_DEFAULT)
    chosen: dict[Modality, list[str]] = {}
    for name in names:
        entry = catalogue.find(name)
        if isinstance(entry.source, LocalSource):
            raise ModelError(
                f"'{name}' is a local path; the containers see only the `models` volume. Run with --local, or copy "
                f"the model into the volume and name it by its path there (e.g. /models/...)."
            )
        if name not in chosen.setdefault(entry.modality, []):
            chosen[entry.modality].append(name)
    return chosen


def stack_for(
    models: dict[Modality, list[str]], *, host: str, port: int, gpu: bool, n_ctx: int | None, directory: Path
) -> Stack:
    env = {"NEXA_HOST": host, "NEXA_PORT": str(port), "NEXA_LOG_JSON": "false"}
    for service in MODALITIES:
        if service.modality in models:
            default, *more = models[service.modality]
            env[f"{service.env_prefix}MODEL"] = default
            env[f"{service.env_prefix}MODELS"] = ",".join(more)
        else:
            env[service.router_url_env] = ""  # the router answers 503 for it at once
    if n_ctx:
        env["NEXA_TEXT_N_CTX"] = str(n_ctx)
    return Stack(directory, [m.value for m in models], env, gpu=gpu)


class Shutdown(Exception):
    """SIGTERM, turned into an exception so the same cleanup as Ctrl-C runs."""


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise Shutdown()


def wait_ready(url: str, logs: subprocess.Popen[bytes], timeout_s: float) -> str | None:
    """Poll the router's /ready until 200; the reason on failure (a service failed, time ran out)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    with httpx.Client(timeout=3.0) as client:
        while time.monotonic() < deadline:
            if logs.poll() is not None:
                return "the containers stopped"
            try:
                response = client.get(url + "/ready")
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 200:
                    return None
                last = response.text[:500]
                try:
                    failed = response.json().get("status") == "failed"
                except (ValueError, AttributeError):
                    failed = False
                # A failed upstream may just be a container still starting; give that a moment.
                if failed and "not reachable" not in last:
                    return f"a service failed to start: {last}"
            time.sleep(0.5)
    return f"not ready within {timeout_s:.0f} s (last: {last})"


def serve(
    models: list[str],
    *,
    host: str,
    port: int,
    gpu: bool,
    onnx: bool,
    n_ctx: int | None,
    ready_timeout_s: float = 900.0,
) -> int:
    """Start the stack, report where the API is, stream logs until Ctrl-C/SIGTERM, then stop the stack."""
    chosen = plan(models, onnx=onnx)
    directory = compose_dir()
    if directory is None:
        raise ModelError(f"no {COMPOSE_FILE} found (set NEXA_COMPOSE_DIR to the nexa repository)")
    stack = stack_for(chosen, host=host, port=port, gpu=gpu, n_ctx=n_ctx, directory=directory)
    url = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
    described = ", ".join(f"{m.value}: {', '.join(names)}" for m, names in chosen.items())
    mode = "docker mode with CUDA" if gpu else "docker mode"
    print(f"nexa: {mode}: starting {described} (images are built on first use)", flush=True)
    previous = signal.signal(signal.SIGTERM, _raise_shutdown)
    logs: subprocess.Popen[bytes] | None = None
    try:
        if stack.run("up", "--detach", "--remove-orphans").returncode != 0:
            print("nexa: `docker compose up` failed (see above)", file=sys.stderr)
            return 1
        logs = stack.popen("logs", "--follow", "--no-color")
        problem = wait_ready(url, logs, ready_timeout_s)
        if problem:
            print(f"nexa: {problem}; stopping.", file=sys.stderr)
            _print_status(stack)
            return 1
        print(f"nexa: serving at {url} (OpenAI base URL {url}/v1). Ctrl-C stops.", flush=True)
        logs.wait()
        print("nexa: the containers' logs ended (the stack was stopped); exiting.", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Shutdown):
        print("nexa: stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        # A second Ctrl-C must not interrupt the teardown.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if logs is not None and logs.poll() is None:
            logs.terminate()
        stack.run("down", "--timeout", "20", stdout=subprocess.DEVNULL)
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _print_status(stack: Stack) -> None:
    done = stack.run("ps", "--all", "--format", "json", capture_output=True)
    for line in done.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        print(f"  {row.get('Service')}: {row.get('State')} {row.get('Health') or ''}", file=sys.stderr)
