"""A real single-node Kubernetes (scripts/kube/cluster.sh) for the session, the locally built images,
and the timings the cluster tests record, printed at the end of the run ("cluster summary")."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from kube_helpers import REPO, Kube, cluster_sh, require_cluster

# Lines for the terminal summary: what each phase took on this machine.
TIMINGS = pytest.StashKey[list[str]]()

# Building the Kubernetes binaries from a cold cache takes ~10 minutes on 2 busy cores.
UP_TIMEOUT_S = 2400


def pytest_configure(config: pytest.Config) -> None:
    config.stash[TIMINGS] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    lines = config.stash.get(TIMINGS, [])
    if lines:
        terminalreporter.section("cluster summary")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def timings(request: pytest.FixtureRequest) -> list[str]:
    return request.config.stash[TIMINGS]


@pytest.fixture(scope="module")
def kube(timings: list[str]) -> Iterator[Kube]:
    """The cluster, up for the module that uses it and taken down after it, so that it holds no memory
    while the rest of the suite runs (NEXA_KUBE_KEEP=1 leaves it running)."""
    require_cluster()
    started = time.monotonic()
    try:
        env_lines = cluster_sh("up", UP_TIMEOUT_S)
    except BaseException:
        cluster_sh("down", 300)
        raise
    timings.append(f"cluster up (binaries cached unless built now): {time.monotonic() - started:.0f} s")
    try:
        yield Kube.from_env_lines(env_lines)
    finally:
        if os.environ.get("NEXA_KUBE_KEEP") != "1":
            status = subprocess.run(
                [str(REPO / "scripts" / "kube" / "cluster.sh"), "status"], capture_output=True, text=True
            )
            timings.append("components at the end:\n  " + status.stdout.strip().replace("\n", "\n  "))
            started = time.monotonic()
            cluster_sh("down", 300)
            timings.append(f"cluster down: {time.monotonic() - started:.0f} s")


@pytest.fixture(scope="session")
def built_images(timings: list[str]) -> list[str]:
    """The CPU images as `docker compose build` makes them (a cache hit when .ci/run built them already)."""
    require_cluster()
    started = time.monotonic()
    env = {**os.environ, "COMPOSE_PROFILES": "text,image,audio"}
    done = subprocess.run(
        ["docker", "compose", "-f", str(REPO / "compose.yaml"), "build"],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert done.returncode == 0, f"docker compose build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    timings.append(f"docker compose build: {time.monotonic() - started:.0f} s")
    return [f"nexa-{component}:latest" for component in ("router", "text", "image", "audio")]
