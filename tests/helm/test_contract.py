"""The chart's contract with the real services: each rendered Deployment's command, env, port and
probes work when that service is started as a real process with exactly that configuration, and
the router's upstream URLs lead, through the rendered Services, to the rendered services.

What differs from a pod, and why: the host is 127.0.0.1 (tests never bind other interfaces),
paths under a volume's mount point are mapped to a local folder standing in for that volume (the
model cache volume becomes the test session's cache), a model that is not embedded in the test
environment is swapped for its modality's embedded one, and a Service's DNS name is resolved the
way kube-proxy would: Service port -> targetPort -> the selected pod's named container port.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from chart_helpers import (
    MODALITIES,
    VALUE_SETS,
    Manifest,
    Rendered,
    container,
    env_of,
    named_port,
    probe_port,
)

from nexa_cli.supervisor import ProcessSpec, Supervisor, free_port

# Models the test environment has without a model hub (see docs/models.md).
EMBEDDED_MODELS = {"text": "smollm2", "image": "tiny-sd", "audio": "whisper-tiny.en"}
# What each service lists once started with its embedded model: the audio service has its voice beside Whisper.
SERVED_MODELS = {**{m: [name] for m, name in EMBEDDED_MODELS.items()}, "audio": ["whisper-tiny.en", "piper-joe"]}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
# Longest wait for a local service to pass its startup probe (the chart allows far more).
START_TIMEOUT_S = 240.0


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def service_target(rendered: Rendered, url: str) -> tuple[Manifest, int]:
    """The Deployment and container port a Service URL leads to, as kube-proxy would route it."""
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.hostname and parts.port, url
    service = rendered.get("Service", parts.hostname)
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == parts.port]
    selector = service["spec"]["selector"]
    (deployment,) = [
        d for d in rendered.of_kind("Deployment") if labels_match(selector, d["spec"]["template"]["metadata"]["labels"])
    ]
    target = port["targetPort"]
    return deployment, named_port(container(deployment), target) if isinstance(target, str) else int(target)


def argv_of(spec: Manifest) -> list[str]:
    """A container's command with this interpreter (or its console scripts) standing in for the image's."""
    argv = [*spec.get("command", []), *spec.get("args", [])]
    assert argv, f"container {spec['name']} relies on the image's entrypoint"
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    script = Path(sys.executable).parent / argv[0]
    assert script.exists(), f"{argv[0]} is not installed in this environment"
    return [str(script), *argv[1:]]


@dataclass
class LocalPod:
    """A rendered Deployment's pod, run as local processes."""

    deployment: Manifest
    volumes: dict[str, Path]
    model_swapped: str | None = None
    spec: ProcessSpec | None = None
    pull_output: list[str] = field(default_factory=list)

    def local_env(self, spec: Manifest, secrets: list[Manifest]) -> dict[str, str]:
        """The container's env, with paths under its mounts moved into the local stand-in volumes."""
        env = env_of(spec, secrets)
        mounts = {PurePosixPath(m["mountPath"]): self.volumes[m["name"]] for m in spec.get("volumeMounts", [])}
        for name, value in env.items():
            for mount, local in mounts.items():
                path = PurePosixPath(value)
                if path == mount or mount in path.parents:
                    env[name] = str(local.joinpath(path.relative_to(mount)))
        return env


@dataclass
class Cluster:
    rendered: Rendered
    pods: dict[str, LocalPod]


def contract_values() -> dict[str, Any]:
    """The ingress + keys example (every service, API keys from the chart's Secret) on free ports.

    Only the container ports move; the Service ports stay the defaults, so the router must reach
    each service through the Service's targetPort, as in a cluster.
    """
    values = copy.deepcopy(VALUE_SETS["ingress-keys"])
    for component in ("router", *MODALITIES):
        values.setdefault(component, {})["port"] = free_port()
    return values


def local_volumes(deployment: Manifest, nexa_cache: Path, tmp: pytest.TempPathFactory) -> dict[str, Path]:
    volumes = {}
    for volume in deployment["spec"]["template"]["spec"]["volumes"]:
        name = volume["name"]
        volumes[name] = nexa_cache if name == "model-cache" else tmp.mktemp(f"{deployment['metadata']['name']}-{name}")
    return volumes


def start_service(supervisor: Supervisor, pod: LocalPod, modality: str) -> None:
    """Run the pod's init step (`nexa pull`), then start its service process with the rendered config."""
    pod_spec = pod.deployment["spec"]["template"]["spec"]
    main = container(pod.deployment)
    env = pod.local_env(main, [])
    prefix = f"NEXA_{modality.upper()}_"
    # The Service can only reach a container that listens on every interface.
    assert env[prefix + "HOST"] == "0.0.0.0"
    env[prefix + "HOST"] = "127.0.0.1"
    if env[prefix + "MODEL"] != EMBEDDED_MODELS[modality]:
        pod.model_swapped = env[prefix + "MODEL"]
        env[prefix + "MODEL"] = EMBEDDED_MODELS[modality]
    for init in pod_spec.get("initContainers", []):
        init_env = pod.local_env(init, [])
        argv = argv_of(init)
        if argv[-1] == pod.model_swapped:
            argv[-1] = env[prefix + "MODEL"]
        done = subprocess.run(argv, env=init_env, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, f"init container {init['name']} failed: {done.stdout}\n{done.stderr}"
        pod.pull_output.append(done.stdout)
    port = named_port(main, "http")
    startup = main["startupProbe"]["httpGet"]
    pod.spec = ProcessSpec(
        name=f"helm-{modality}",
        argv=argv_of(main),
        port=port,
        env=env,
        ready_path=startup["path"],
    )
    supervisor.start(pod.spec)


@pytest.fixture(scope="module")
def cluster(
    render: Any, nexa_cache: Path, tiny_sd: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Every rendered Deployment as local processes. Its own Supervisor: they stop when this module ends."""
    rendered: Rendered = render(contract_values())
    with Supervisor(tmp_path_factory.mktemp("helm-logs")) as supervisor:
        pods: dict[str, LocalPod] = {}
        for modality in MODALITIES:
            deployment = rendered.component("Deployment", modality)
            pods[modality] = LocalPod(deployment, local_volumes(deployment, nexa_cache, tmp_path_factory))
            start_service(supervisor, pods[modality], modality)
        for child in list(supervisor.children):
            supervisor.wait_ready(child, START_TIMEOUT_S)
        yield Cluster(rendered, pods)


@pytest.fixture(scope="module")
def router(
    cluster: Cluster, nexa_cache: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ProcessSpec, dict[str, str]]]:
    """The router, started with its rendered env; Service URLs resolved to the local service processes."""
    rendered = cluster.rendered
    deployment = rendered.component("Deployment", "router")
    main = container(deployment)
    pod = LocalPod(deployment, local_volumes(deployment, nexa_cache, tmp_path_factory))
    env = pod.local_env(main, rendered.of_kind("Secret"))
    assert env["NEXA_ROUTER_HOST"] == "0.0.0.0"
    env["NEXA_ROUTER_HOST"] = "127.0.0.1"
    for name, url in list(env.items()):
        if name.startswith("NEXA_ROUTER_") and name.endswith("_URL"):
            _, port = service_target(rendered, url)
            env[name] = f"http://127.0.0.1:{port}"
    spec = ProcessSpec("helm-router", argv_of(main), named_port(main, "http"), env, ready_path="/ready")
    with Supervisor(tmp_path_factory.mktemp("helm-router-logs")) as supervisor:
        supervisor.wait_ready(supervisor.start(spec), START_TIMEOUT_S)
        yield spec, env


def assert_probes_answer(main: Manifest) -> None:
    """Each probe's path, on the port it names, answers with a status the kubelet counts as success."""
    with httpx.Client(timeout=10.0) as client:
        for kind in PROBES:
            probe = main[kind]["httpGet"]
            assert probe.get("scheme", "HTTP") == "HTTP" and "host" not in probe
            response = client.get(f"http://127.0.0.1:{probe_port(main, main[kind])}{probe['path']}")
            assert 200 <= response.status_code < 400, f"{kind} {probe['path']}: {response.status_code} {response.text}"


@pytest.mark.parametrize("value_set", sorted(VALUE_SETS))
def test_router_upstreams_are_the_rendered_services(render: Any, value_set: str) -> None:
    values = VALUE_SETS[value_set]
    rendered: Rendered = render(values)
    env = env_of(container(rendered.component("Deployment", "router")))
    urls = {name: value for name, value in env.items() if name.endswith("_URL")}
    enabled = [m for m in MODALITIES if values.get(m, {}).get("enabled", True)]
    assert sorted(urls) == sorted(f"NEXA_ROUTER_{m.upper()}_URL" for m in enabled)
    for modality in enabled:
        deployment, port = service_target(rendered, urls[f"NEXA_ROUTER_{modality.upper()}_URL"])
        assert deployment["metadata"]["name"] == rendered.component("Deployment", modality)["metadata"]["name"]
        # ...and the service listens where the Service sends its traffic.
        assert env_of(container(deployment))[f"NEXA_{modality.upper()}_PORT"] == str(port)


@pytest.mark.parametrize("modality", MODALITIES)
def test_service_runs_with_its_rendered_config_and_answers_its_probes(cluster: Cluster, modality: str) -> None:
    pod = cluster.pods[modality]
    main = container(pod.deployment)
    assert pod.spec is not None
    # The port the probes and the Service use is the one the process was told to listen on.
    assert pod.spec.env[f"NEXA_{modality.upper()}_PORT"] == str(named_port(main, "http")) == str(pod.spec.port)
    assert_probes_answer(main)
    with httpx.Client(timeout=10.0) as client:
        ready = client.get(f"{pod.spec.url}/ready").json()
        models = client.get(f"{pod.spec.url}/v1/models").json()
    assert ready["status"] == "ready"
    assert [m["id"] for m in models["data"]] == SERVED_MODELS[modality]
    # The pull step ran with the rendered command and put (or found) the model in the cache volume.
    assert len(pod.pull_output) == 1 and EMBEDDED_MODELS[modality] in pod.pull_output[0]


def test_router_reaches_every_service_through_the_rendered_urls(
    cluster: Cluster, router: tuple[ProcessSpec, dict[str, str]]
) -> None:
    spec, env = router
    assert_probes_answer(container(cluster.rendered.component("Deployment", "router")))
    key = env["NEXA_ROUTER_API_KEYS"].split(",")[0]
    with httpx.Client(base_url=spec.url, timeout=10.0) as client:
        # /ready is 200 only when every configured upstream answered ready.
        ready = client.get("/ready")
        assert ready.status_code == 200, ready.text
        # The keys came from the chart's Secret: without one the API refuses, with one it serves.
        assert client.get("/v1/models").status_code == 401
        models = client.get("/v1/models", headers={"Authorization": f"Bearer {key}"})
    assert models.status_code == 200, models.text
    assert sorted(m["id"] for m in models.json()["data"]) == sorted(
        n for names in SERVED_MODELS.values() for n in names
    )
