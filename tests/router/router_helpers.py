"""Process specs for the router tests: routers in front of chosen upstreams, and fake upstreams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from nexa_cli.supervisor import Child, ProcessSpec, Supervisor, free_port, python_module

FAKE_UPSTREAM = Path(__file__).with_name("fake_upstream.py")


def router_process(
    name: str, upstreams: dict[str, str], env: dict[str, str] | None = None, ready_path: str = "/ready"
) -> ProcessSpec:
    """A router (`python -m nexa_router`) on a free port; `ready_path="/health"` when some upstream is down."""
    port = free_port()
    full_env = {"NEXA_ROUTER_HOST": "127.0.0.1", "NEXA_ROUTER_PORT": str(port), "NEXA_ROUTER_LOG_JSON": "false"}
    # An empty value, not a missing one: the test process may have NEXA_ROUTER_* set for other reasons.
    for modality in ("text", "image", "audio"):
        full_env[f"NEXA_ROUTER_{modality.upper()}_URL"] = upstreams.get(modality, "")
    full_env.update(env or {})
    return ProcessSpec(name, python_module("nexa_router"), port, full_env, ready_path=ready_path)


def fake_process(name: str, ready: str = "ready") -> ProcessSpec:
    port = free_port()
    env = {"FAKE_PORT": str(port), "FAKE_NAME": name, "FAKE_READY": ready}
    return ProcessSpec(name, [sys.executable, str(FAKE_UPSTREAM)], port, env, ready_path="/health")


def closed_port_url() -> str:
    """An address where nothing listens (a port just freed)."""
    return f"http://127.0.0.1:{free_port()}"


def service_process(modality: str, env: dict[str, str], name: str) -> ProcessSpec:
    """An own copy of a real service (`python -m nexa_<modality>`), for tests that stop and start it."""
    port = free_port()
    prefix = f"NEXA_{modality.upper()}_"
    full_env = {prefix + "HOST": "127.0.0.1", prefix + "PORT": str(port), prefix + "LOG_JSON": "false", **env}
    return ProcessSpec(name, python_module(f"nexa_{modality}"), port, full_env)


def stop_child(sup: Supervisor, child: Child, timeout_s: float = 15.0) -> None:
    """Stop one child of a supervisor (its whole process group), leaving the others running."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(child.process.pid, sig)
        except ProcessLookupError:
            break
        try:
            child.process.wait(timeout_s)
            break
        except subprocess.TimeoutExpired:
            continue
    sup.children.remove(child)
