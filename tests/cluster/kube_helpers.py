"""The real single-node cluster of scripts/kube/cluster.sh and the clients the cluster tests drive it
with: the cluster's own kubectl, `kubectl port-forward` on 127.0.0.1, and Helm (helm-python-sdk,
which embeds Helm's Go SDK: there is no Linux helm CLI in any registry the machines reach).

Without root or Docker the cluster tests are skipped with the reason, unless NEXA_REQUIRE_CLUSTER=1
(`.ci/run` sets it), where they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
from helm_python import _native

REPO = Path(__file__).resolve().parents[2]
CLUSTER_SH = REPO / "scripts" / "kube" / "cluster.sh"
CHART = REPO / "helm" / "nexa"

Manifest = dict[str, Any]


def require_cluster() -> None:
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not root (the cluster starts system components and changes the network)")
    if shutil.which("docker") is None or subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        reasons.append("no Docker engine answers (scripts/prepare-docker-host.sh)")
    if not reasons:
        return
    if os.environ.get("NEXA_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"NEXA_REQUIRE_CLUSTER=1 but {'; '.join(reasons)}")
    pytest.skip(f"the cluster tests need a real single-node Kubernetes: {'; '.join(reasons)}")


def cluster_sh(command: str, timeout_s: float) -> str:
    """Run scripts/kube/cluster.sh COMMAND; its log (and the components' logs on failure) in the error."""
    done = subprocess.run([str(CLUSTER_SH), command], capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise AssertionError(f"cluster.sh {command} failed ({done.returncode}):\n{done.stderr[-8000:]}")
    return done.stdout


@dataclass(frozen=True)
class Kube:
    """kubectl against the test cluster (the kubectl built with it: client and server versions match)."""

    kubeconfig: Path
    kubectl_path: Path

    @classmethod
    def from_env_lines(cls, lines: str) -> Kube:
        """From cluster.sh's `export KUBECONFIG=...` / `export PATH=BIN:$PATH` lines."""
        kubeconfig = re.search(r"^export KUBECONFIG=(\S+)$", lines, re.MULTILINE)
        path = re.search(r"^export PATH=([^:]+):", lines, re.MULTILINE)
        assert kubeconfig and path, f"cluster.sh up printed no environment: {lines!r}"
        return cls(Path(kubeconfig.group(1)), Path(path.group(1)) / "kubectl")

    def argv(self, *args: str) -> list[str]:
        return [str(self.kubectl_path), "--kubeconfig", str(self.kubeconfig), *args]

    def run(
        self, *args: str, timeout_s: float = 60, check: bool = True, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout_s, input=stdin)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        return done

    def get(self, *args: str) -> Manifest:
        result: Manifest = json.loads(self.run("get", *args, "-o", "json").stdout)
        return result

    def items(self, *args: str) -> list[Manifest]:
        return list(self.get(*args).get("items", []))

    def apply(self, manifest: Manifest) -> None:
        self.run("apply", "-f", "-", stdin=json.dumps(manifest))

    def pods(self, namespace: str, component: str) -> list[Manifest]:
        """The pods of one chart component that are not being deleted."""
        pods = self.items("pods", "-n", namespace, "-l", f"app.kubernetes.io/component={component}")
        return [p for p in pods if not p["metadata"].get("deletionTimestamp")]

    def logs(self, namespace: str, pod: str, container: str) -> str:
        return self.run("logs", "-n", namespace, pod, "-c", container, timeout_s=30).stdout

    def describe(self, namespace: str) -> str:
        """Pods, events: what to read when something in the namespace did not come up."""
        pods = self.run("get", "pods", "-n", namespace, "-o", "wide", check=False).stdout
        events = self.run("get", "events", "-n", namespace, "--sort-by=.lastTimestamp", check=False).stdout
        return f"{pods}\n{events[-6000:]}"


def wait_until(what: str, check: Callable[[], bool], timeout_s: float, every_s: float = 1.0) -> float:
    """Poll `check` until true (bounded); returns the seconds it took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"{what}: not within {timeout_s:.0f} s")
        time.sleep(every_s)
    return time.monotonic() - started


def deployment_available(deployment: Manifest) -> bool:
    """Rolled out and available: every replica updated and ready, as `kubectl rollout status` sees it."""
    spec, status = deployment["spec"], deployment.get("status", {})
    wanted = spec.get("replicas", 1)
    conditions = {c["type"]: c["status"] for c in status.get("conditions", [])}
    return (
        status.get("observedGeneration", 0) >= deployment["metadata"]["generation"]
        and status.get("updatedReplicas", 0) == wanted
        and status.get("availableReplicas", 0) == wanted
        and status.get("replicas", 0) == wanted  # no old pod left over
        and conditions.get("Available") == "True"
    )


@contextmanager
def port_forward(kube: Kube, namespace: str, service: str, port: int, timeout_s: float = 60) -> Iterator[str]:
    """`kubectl port-forward svc/SERVICE :PORT` on 127.0.0.1; yields the local base URL."""
    process = subprocess.Popen(
        kube.argv("port-forward", "--address", "127.0.0.1", "-n", namespace, f"svc/{service}", f":{port}"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + timeout_s
        seen = []
        while time.monotonic() < deadline:
            line = process.stdout.readline()  # kubectl prints the line at once, or exits
            if not line:
                break
            seen.append(line)
            found = re.match(r"Forwarding from 127\.0\.0\.1:(\d+) ->", line)
            if found:
                yield f"http://127.0.0.1:{found.group(1)}"
                return
        raise AssertionError(f"kubectl port-forward to svc/{service} did not start: {''.join(seen)}")
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


class Helm:
    """Install, upgrade and uninstall through Helm's own Go SDK, with client-side apply.

    Helm v4 applies server-side by default, which the 1.20 API server rejects for Services
    ("associative list with keys has an element that omits key field protocol"); `helm install
    --server-side=false` is the CLI's way out. helm-python-sdk 0.2.2's install/upgrade take no such
    argument, but its C library reads `server_side_apply` from the same options, so these two calls
    go to it directly (the rest is the public API).
    """

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.config = helm.Config(kubeconfig_path=kube.kubeconfig, namespace=namespace)
        self.namespace = namespace

    def close(self) -> None:
        self.config.close()

    def _options(self, timeout_s: int, server_side_apply: bool | str) -> str:
        return json.dumps(
            {
                "namespace": self.namespace,
                "timeout_seconds": timeout_s,
                "wait": "watcher",
                "server_side_apply": server_side_apply,
            }
        )

    def install(self, chart: helm.Chart, name: str, values: Manifest, timeout_s: int = 900) -> Manifest:
        payload = _native.call_string(
            "helm_install",
            self.config._raw(),
            _native.HANDLE(0),  # no cancellation context
            chart._raw(),
            None,
            name,
            json.dumps(values),
            self._options(timeout_s, server_side_apply=False),
        )
        release: Manifest = json.loads(payload)
        return release

    def upgrade(self, chart: helm.Chart, name: str, values: Manifest, timeout_s: int = 900) -> Manifest:
        payload = _native.call_string(
            "helm_upgrade",
            self.config._raw(),
            _native.HANDLE(0),
            chart._raw(),
            None,
            name,
            json.dumps(values),
            # The upgrade's option is a string: "true", "false" or "auto" (follow the release).
            self._options(timeout_s, server_side_apply="false"),
        )
        release: Manifest = json.loads(payload)
        return release

    def uninstall(self, name: str, timeout_s: int = 300) -> Manifest:
        return self.config.uninstall(name, wait="watcher", timeout=timeout_s, ignore_not_found=True)

    def releases(self) -> list[str]:
        return [r["name"] for r in self.config.list(all_states=True)]
