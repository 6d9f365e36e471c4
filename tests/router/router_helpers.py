"""Process specs for the router tests: routers in front of chosen upstreams, and fake upstreams."""

from __future__ import annotations

import sys
from pathlib import Path

from nexa_cli.supervisor import ProcessSpec, free_port

FAKE_UPSTREAM = Path(__file__).with_name("fake_upstream.py")
API_KEYS = ("key-one-4f9a", "key-two-77c1")
JSON_LIMIT = 4096
AUDIO_LIMIT = 256 * 1024


def fake_process(name: str, ready: str = "ready") -> ProcessSpec:
    port = free_port()
    env = {"FAKE_PORT": str(port), "FAKE_NAME": name, "FAKE_READY": ready}
    return ProcessSpec(name, [sys.executable, str(FAKE_UPSTREAM)], port, env, ready_path="/health")
