"""Helpers for the container tests: the real Docker engine and compose v2, on 127.0.0.1 only.

Without Docker the end-to-end tests are skipped with the reason, unless NEXA_REQUIRE_DOCKER=1
(CI sets it after scripts/prepare-docker-host.sh), where they fail instead.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from nexa_cli import docker_mode

REPO = Path(__file__).resolve().parents[2]


def require_docker() -> None:
    reason = docker_mode.unavailable_reason()
    if reason is None:
        return
    if os.environ.get("NEXA_REQUIRE_DOCKER") == "1":
        pytest.fail(f"NEXA_REQUIRE_DOCKER=1 but {reason} (run scripts/prepare-docker-host.sh)")
    pytest.skip(f"{reason}: the container tests need Docker with compose v2 (scripts/prepare-docker-host.sh)")


@dataclass
class Compose:
    """`docker compose` on the repository's compose.yaml under a project name of the test's own."""

    project: str
    env: Mapping[str, str] = field(default_factory=dict)

    def argv(self, *args: str) -> list[str]:
        return ["docker", "compose", "-f", str(REPO / "compose.yaml"), "-p", self.project, *args]

    def run(self, *args: str, timeout_s: float = 900.0, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.argv(*args), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout_s
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"docker compose {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def container(self, service: str) -> str:
        ids = self.run("ps", "-q", service).stdout.split()
        assert ids, f"no container for {service}"
        return ids[0]

    def logs(self) -> str:
        return self.run("logs", "--no-color", "--tail", "40", check=False, timeout_s=60).stdout

    def down(self) -> None:
        self.run("down", "-v", "--timeout", "10", "--remove-orphans", check=False, timeout_s=180)


def inspect(container: str, template: str) -> str:
    done = subprocess.run(["docker", "inspect", "-f", template, container], capture_output=True, text=True, timeout=30)
    return done.stdout.strip()


def wait_until_ready(url: str, timeout_s: float) -> None:
    """Poll the router's /ready until 200 (bounded); fail at once when a service reports a failed load."""
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                response = client.get(url + "/ready")
                if response.status_code == 200:
                    return
                last = response.text[:500]
                upstreams = response.json().get("upstreams") or {}
                failed = [
                    m for m, v in upstreams.items() if v.get("status") == "failed" and "not reachable" not in str(v)
                ]
                if failed:
                    raise AssertionError(f"{', '.join(failed)} failed to start: {last}")
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            time.sleep(1.0)
    raise AssertionError(f"{url} not ready within {timeout_s:.0f} s: {last}")
