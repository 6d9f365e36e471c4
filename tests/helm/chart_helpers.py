"""The chart's value sets and lookups in its rendered manifests (shared by the Helm tests)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "nexa"
EXAMPLES = REPO / "helm" / "examples"
RELEASE = "demo"
NAMESPACE = "nexa-test"
MODALITIES = ("text", "image", "audio")

Manifest = dict[str, Any]


def example(name: str) -> dict[str, Any]:
    """An example values file from helm/examples/ (the README's setups)."""
    values = yaml.safe_load((EXAMPLES / f"{name}.yaml").read_text())
    assert isinstance(values, dict), f"{name}.yaml is not a mapping"
    return values


# Every value set the chart is checked with: its defaults, each README example, and one that turns
# on the remaining switches (existing claim and secret, ServiceMonitor, registry, fixed tags).
VALUE_SETS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "cpu-only": example("cpu-only"),
    "gpu": example("gpu"),
    "text-only": example("text-only"),
    "scaled-out": example("scaled-out"),
    "ingress-keys": example("ingress-keys"),
    "local-images": example("local-images"),
    "existing-resources": {
        "global": {"imageRegistry": "registry.example.com/ml/", "imageTag": "1.2.3"},
        "apiKeys": {"existingSecret": "my-keys", "secretKey": "keys"},
        "modelCache": {"type": "persistentVolumeClaim", "persistentVolumeClaim": {"existingClaim": "models"}},
        "modelPull": {"enabled": False},
        "networkPolicy": {"enabled": False},
        "serviceMonitor": {"enabled": True},
        "serviceAccount": {"create": False},
        "router": {"service": {"type": "LoadBalancer", "port": 80}},
        "image": {"image": {"tag": "custom"}, "gpu": {"enabled": True, "count": 2}},
    },
}


class Rendered:
    """One rendering of the chart: its manifests, parsed, and lookups by kind and name."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.notes = next((text for path, text in files.items() if path.endswith("NOTES.txt")), "")
        self.manifests: list[Manifest] = [
            doc
            for path, text in sorted(files.items())
            if path.endswith((".yaml", ".yml"))
            for doc in yaml.safe_load_all(text)
            if doc
        ]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m["kind"] == kind]

    def names(self, kind: str) -> set[str]:
        return {m["metadata"]["name"] for m in self.of_kind(kind)}

    def get(self, kind: str, name: str) -> Manifest:
        found = [m for m in self.of_kind(kind) if m["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)} (have {sorted(self.names(kind))})"
        return found[0]

    def component(self, kind: str, component: str) -> Manifest:
        return self.get(kind, f"{RELEASE}-nexa-{component}")


def container(deployment: Manifest) -> Manifest:
    """The (single) main container of a Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, [c["name"] for c in containers]
    return containers[0]


def env_of(container_spec: Manifest, secrets: list[Manifest] | None = None) -> dict[str, str]:
    """A container's environment as a dict; `secretKeyRef`s are resolved from the rendered Secrets."""
    env: dict[str, str] = {}
    for item in container_spec.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item.get("valueFrom", {}).get("secretKeyRef")
        secret = next((s for s in secrets or [] if ref and s["metadata"]["name"] == ref["name"]), None)
        if secret is not None:
            env[item["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
    return env


def named_port(container_spec: Manifest, name: str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container_spec.get("ports", [])}
    assert name in ports, f"container {container_spec['name']} has no port named {name!r}: {ports}"
    return int(ports[name])


def probe_port(container_spec: Manifest, probe: Manifest) -> int:
    """The port an httpGet probe hits: a number, or a container port's name."""
    port = probe["httpGet"]["port"]
    return named_port(container_spec, port) if isinstance(port, str) else int(port)
