"""The Helm chart installed on a real Kubernetes 1.20 (scripts/kube/cluster.sh) from the locally built
images, and driven through `kubectl port-forward` to the router's Service on 127.0.0.1.

One release for the module, in the order a user meets it: install (every Deployment available,
the model cache filled by the init containers into a claim bound to a hostPath PersistentVolume),
API keys from the chart's Secret, chat (streamed and not), transcription, txt2img, /v1/models;
then the text pod is killed (503s, a new pod, service back, audio answering throughout); then a
`helm upgrade` changes the text model's context size and rolls only the text Deployment; then
`helm uninstall` leaves nothing but the model cache it is told to keep, a second install
reuses that cache instead of building the models again, and with `keep` off an uninstall leaves
nothing at all.

What this cluster cannot show, and where it is checked instead: there is no metrics-server (an HPA
is created and accepted, but cannot scale), no NetworkPolicy engine (policies are accepted, not
enforced) and no GPU node; tests/helm checks those rendered manifests (HPA targets and metrics,
policies admitting only the router, GPU limits, tolerations and images).
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import httpx
import openai
import pytest
import yaml
from kube_helpers import CHART, REPO, Helm, Kube, Manifest, deployment_available, port_forward, wait_until
from support import chat_status, status_runs, transcribing

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(3600)]

NAMESPACE = "nexa-ci"
RELEASE = "nexa-ci"  # contains "nexa": resources are named nexa-ci-router, nexa-ci-text, ...
COMPONENTS = ("router", "text", "image", "audio")
MODEL_PULL = "model-pull"
CLAIM = f"{RELEASE}-models"
VOLUME = "nexa-ci-models"  # the PersistentVolume (cluster-scoped) the test provides for the claim
API_KEY = f"ci-{secrets.token_hex(8)}"
# Every namespaced kind the chart creates (or Kubernetes derives from them), for "nothing left behind".
RELEASE_KINDS = "all,secrets,configmaps,serviceaccounts,pvc,pdb,hpa,networkpolicies,endpoints,ingresses"
# A prompt longer than the smaller context the upgrade sets, shorter than the default one.
LONG_PROMPT = " ".join(["The quick brown fox jumps over the lazy dog."] * 130)  # ~1300 tokens


def base_values() -> Manifest:
    values: Manifest = yaml.safe_load((REPO / "helm" / "examples" / "local-images.yaml").read_text())
    values["apiKeys"] = {"keys": [API_KEY]}
    # An HPA, so that the API server shows which autoscaling version the chart chose (1.20 serves
    # autoscaling/v2beta2, not v2). With no metrics-server it holds the replicas at minReplicas.
    values["router"]["autoscaling"] = {"enabled": True, "minReplicas": 1, "maxReplicas": 2}
    # A context set explicitly (the default is the model's trained length, 8192 for SmolLM2), so that
    # the upgrade test changes a known value and the text pod's cache stays small.
    values["text"]["env"] = {"NEXA_TEXT_N_CTX": "2048"}
    return values


def with_text_env(values: Manifest, env: dict[str, str]) -> Manifest:
    changed = json.loads(json.dumps(values))
    changed["text"]["env"] = env
    return changed


def init_seconds(pod: Manifest, container: str) -> float:
    """How long an init container ran, from the kubelet's own record of it."""
    (status,) = [s for s in pod["status"]["initContainerStatuses"] if s["name"] == container]
    finished = status["state"]["terminated"]
    return parse_time(finished["finishedAt"]) - parse_time(finished["startedAt"])


def parse_time(stamp: str) -> float:
    return time.mktime(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))


class Install:
    """The release under test: its Helm client, values and the timings of each install."""

    def __init__(self, kube: Kube, chart: helm.Chart, timings: list[str]) -> None:
        self.kube, self.chart, self.timings = kube, chart, timings
        self.helm = Helm(kube, NAMESPACE)
        self.values = base_values()
        self.installs: list[dict[str, Any]] = []
        self.last: Manifest = {}

    def install(self, label: str) -> Manifest:
        started = time.monotonic()
        try:
            release = self.helm.install(self.chart, RELEASE, self.values)
        except helm.HelmError as exc:
            raise AssertionError(f"helm install failed: {exc}\n{self.kube.describe(NAMESPACE)}") from exc
        took = time.monotonic() - started
        pulls = {m: init_seconds(self.kube.pods(NAMESPACE, m)[0], MODEL_PULL) for m in COMPONENTS[1:]}
        logs = {m: self.kube.logs(NAMESPACE, self.pod_name(m), MODEL_PULL).strip() for m in COMPONENTS[1:]}
        self.last = release
        self.installs.append({"label": label, "seconds": took, "pulls": pulls, "logs": logs})
        self.timings.append(
            f"helm install --wait ({label}): {took:.0f} s; model-pull init containers: "
            + ", ".join(f"{m} {s:.0f} s" for m, s in pulls.items())
        )
        return release

    def pod_name(self, component: str) -> str:
        (pod,) = self.kube.pods(NAMESPACE, component)
        return str(pod["metadata"]["name"])

    def deployment(self, component: str) -> Manifest:
        return self.kube.get("deployment", "-n", NAMESPACE, f"{RELEASE}-{component}")


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


@pytest.fixture(scope="module")
def model_volume(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A hostPath PersistentVolume for the chart's model cache claim (the cluster has no storage class).

    Pre-bound to the claim by claimRef, Retain: the models outlive the claim. hostPath volumes keep the
    folder's owner (fsGroup does not apply), so it belongs to the pods' user 10001.
    """
    folder = tmp_path_factory.mktemp("model-cache")
    folder.chmod(0o755)
    subprocess.run(["chown", "10001:10001", str(folder)], check=True)
    kube.apply(
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": VOLUME},
            "spec": {
                "capacity": {"storage": "5Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": str(folder), "type": "Directory"},
                "claimRef": {"namespace": NAMESPACE, "name": CLAIM},
            },
        }
    )
    yield folder
    kube.run("delete", "pv", VOLUME, "--ignore-not-found", "--wait=true", timeout_s=120, check=False)


@pytest.fixture(scope="module")
def release(
    kube: Kube, built_images: list[str], chart: helm.Chart, model_volume: Path, timings: list[str]
) -> Iterator[Install]:
    kube.run("create", "namespace", NAMESPACE)
    install = Install(kube, chart, timings)
    try:
        install.install("first, empty model cache")
        yield install
    finally:
        try:
            install.helm.uninstall(RELEASE)
        finally:
            install.helm.close()
            kube.run("delete", "namespace", NAMESPACE, "--wait=true", timeout_s=300, check=False)


@pytest.fixture(scope="module")
def api(kube: Kube, release: Install) -> Iterator[str]:
    with port_forward(kube, NAMESPACE, f"{RELEASE}-router", 8000) as url:
        yield url


@pytest.fixture(scope="module")
def client(api: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=api + "/v1", api_key=API_KEY, max_retries=0, timeout=180)


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {API_KEY}"}


def test_every_deployment_is_available_with_the_cache_claim_bound(
    kube: Kube, release: Install, model_volume: Path
) -> None:
    for component in COMPONENTS:
        deployment = release.deployment(component)
        assert deployment_available(deployment), f"{component}: {deployment.get('status')}"
        (pod,) = kube.pods(NAMESPACE, component)
        (main,) = pod["spec"]["containers"]
        assert main["image"] == f"nexa-{component}:latest"
        assert main["imagePullPolicy"] == "Never"
        assert all(s["ready"] for s in pod["status"]["containerStatuses"])
    claim = kube.get("pvc", "-n", NAMESPACE, CLAIM)
    assert claim["status"]["phase"] == "Bound" and claim["spec"]["volumeName"] == VOLUME
    # The image service's init container built tiny-sd into the claim, i.e. into the host folder.
    (first,) = release.installs
    assert "Building tiny-sd" in first["logs"]["image"], first["logs"]["image"]
    assert any(model_volume.rglob("model_index.json")), sorted(str(p) for p in model_volume.rglob("*"))[:20]


def test_the_chart_chose_the_api_versions_this_cluster_serves(kube: Kube, release: Install) -> None:
    manifest = release.last["manifest"]
    kinds = {(doc["kind"], doc["apiVersion"]) for doc in yaml.safe_load_all(manifest) if doc}
    assert ("HorizontalPodAutoscaler", "autoscaling/v2beta2") in kinds
    assert ("PodDisruptionBudget", "policy/v1beta1") in kinds
    # ...and the API server stored them (1.20 has neither autoscaling/v2 nor policy/v1).
    hpa = kube.get("horizontalpodautoscalers.v2beta2.autoscaling", "-n", NAMESPACE, f"{RELEASE}-router")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"{RELEASE}-router"
    pdbs = kube.items("poddisruptionbudgets.v1beta1.policy", "-n", NAMESPACE)
    assert {p["metadata"]["name"] for p in pdbs} == {f"{RELEASE}-{c}" for c in COMPONENTS}
    # NetworkPolicies are accepted (this cluster has no engine that enforces them).
    policies = kube.items("networkpolicies", "-n", NAMESPACE)
    assert {p["metadata"]["name"] for p in policies} == {f"{RELEASE}-{c}" for c in COMPONENTS[1:]}


def test_cluster_dns_resolves_the_routers_upstreams_and_nothing_leaves_the_cluster(
    kube: Kube, release: Install
) -> None:
    router = release.pod_name("router")
    (container,) = kube.get("pod", "-n", NAMESPACE, router)["spec"]["containers"]
    upstreams = {e["name"]: e["value"] for e in container["env"] if e["name"].endswith("_URL")}
    assert set(upstreams) == {"NEXA_ROUTER_TEXT_URL", "NEXA_ROUTER_IMAGE_URL", "NEXA_ROUTER_AUDIO_URL"}
    for modality in COMPONENTS[1:]:
        service = kube.get("service", "-n", NAMESPACE, f"{RELEASE}-{modality}")
        host = upstreams[f"NEXA_ROUTER_{modality.upper()}_URL"].split("//")[1].split(":")[0]
        # Resolved inside the router's pod, through its resolv.conf (search path, cluster DNS).
        script = f"import socket; print(socket.gethostbyname({host!r}))"
        resolved = kube.run("exec", "-n", NAMESPACE, router, "--", "python3", "-c", script).stdout.strip()
        assert resolved == service["spec"]["clusterIP"], f"{host} -> {resolved}"

    # Pods reach nothing outside the cluster: no name resolves, no address has a route (203.0.113.1 is
    # a documentation address; ENETUNREACH comes from the pod's routing table, before any packet).
    script = (
        "import errno, socket\n"
        "try:\n    socket.gethostbyname('pypi.org'); print('resolved')\n"
        "except socket.gaierror:\n    print('unresolved')\n"
        "try:\n    socket.create_connection(('203.0.113.1', 80), timeout=3); print('connected')\n"
        "except OSError as exc:\n    print(errno.errorcode.get(exc.errno, exc))\n"
    )
    outside = kube.run("exec", "-n", NAMESPACE, router, "--", "python3", "-c", script).stdout.split()
    assert outside == ["unresolved", "ENETUNREACH"]


def test_api_keys_from_the_charts_secret_are_enforced(api: str) -> None:
    with httpx.Client(base_url=api, timeout=30) as http:
        assert http.get("/v1/models").status_code == 401
        wrong = http.get("/v1/models", headers={"Authorization": "Bearer not-the-key"})
        assert wrong.status_code == 401
        assert wrong.json()["error"]["code"]
        assert http.get("/v1/models", headers=auth()).status_code == 200
        assert http.get("/health").status_code == 200  # probes need no key


def test_models_lists_the_three_modalities(client: openai.OpenAI) -> None:
    cards = client.models.list().data
    modalities = {card.id: getattr(card, "modality", None) for card in cards}
    assert {modalities.get(m) for m in ("smollm2", "whisper-tiny.en", "tiny-sd")} == {"text", "audio", "image"}
    assert set(modalities.values()) == {"text", "audio", "image"}


def test_chat_completion_streamed_and_not(client: openai.OpenAI) -> None:
    messages: Any = [{"role": "user", "content": "What is the capital of France?"}]
    answer = client.chat.completions.create(model="smollm2", messages=messages, max_tokens=12)
    assert answer.choices[0].message.content
    assert answer.usage is not None and 0 < answer.usage.completion_tokens <= 12
    chunks = list(client.chat.completions.create(model="smollm2", messages=messages, max_tokens=12, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 2 and text
    assert chunks[-1].choices == [] or chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_transcription_of_jfk(client: openai.OpenAI, shared_data: Path) -> None:
    with (shared_data / "jfk.flac").open("rb") as audio:
        text = client.audio.transcriptions.create(model="whisper-tiny.en", file=audio).text
    assert "ask not what your country can do for you" in text.lower()


def test_txt2img_with_the_tiny_pipeline(api: str) -> None:
    body = {"prompt": "a lighthouse", "width": 64, "height": 96, "sample_steps": 2, "seed": 7}
    response = httpx.post(api + "/v1/txt2img", json=body, headers=auth(), timeout=180)
    assert response.status_code == 200, response.text
    png = base64.b64decode(response.json()["data"][0]["base64"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (64, 96)


def test_killed_text_pod_gives_503s_and_is_replaced_while_audio_keeps_answering(
    kube: Kube, release: Install, api: str, shared_data: Path, timings: list[str]
) -> None:
    old_pod = release.pod_name("text")
    with (
        transcribing(api, (shared_data / "jfk.flac").read_bytes(), auth()) as audio_statuses,
        httpx.Client(base_url=api, timeout=120, headers=auth()) as http,
    ):
        assert chat_status(http) == 200
        killed = time.monotonic()
        kube.run("delete", "pod", "-n", NAMESPACE, old_pod, "--grace-period=0", "--force", "--wait=false")
        seen: list[int] = []
        while time.monotonic() < killed + 300 and len(seen) < 5000 and (503 not in seen or seen[-1] != 200):
            seen.append(chat_status(http))
            if seen[-20:] == [200] * 20:
                break  # answered throughout: fail below rather than wait out the deadline
            time.sleep(0.05)
        restored = time.monotonic() - killed
    summary = status_runs(seen)
    assert 503 in seen, f"the router should answer 503 while no text pod is ready; got {summary}"
    assert seen[-1] == 200, f"text did not answer again within 300 s; got {summary}"
    # A request already on its way to the old pod may find the connection dropped (502).
    assert set(seen) <= {200, 502, 503}, f"unexpected text answers: {summary}\n{kube.describe(NAMESPACE)}"
    new_pod = release.pod_name("text")
    assert new_pod != old_pod, "the ReplicaSet should have replaced the deleted pod"
    assert deployment_available(release.deployment("text"))
    assert audio_statuses and set(audio_statuses) == {200}, f"audio failed meanwhile: {status_runs(audio_statuses)}"
    timings.append(
        f"text pod killed -> answering again through the router: {restored:.0f} s ({summary}); "
        f"audio meanwhile: {status_runs(audio_statuses)}"
    )


def test_upgrade_changing_the_context_size_rolls_only_the_text_deployment(
    kube: Kube, release: Install, client: openai.OpenAI, timings: list[str]
) -> None:
    def context_error() -> str:
        with pytest.raises(openai.BadRequestError) as excinfo:
            client.completions.create(model="smollm2", prompt=LONG_PROMPT * 2, max_tokens=4)
        return str(excinfo.value)

    assert "holds 2048 tokens" in context_error()
    before = {c: release.pod_name(c) for c in COMPONENTS}
    revision = release.deployment("text")["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    started = time.monotonic()
    release.values = with_text_env(release.values, {"NEXA_TEXT_N_CTX": "1024"})
    upgraded = release.helm.upgrade(release.chart, RELEASE, release.values)
    took = time.monotonic() - started
    assert upgraded["revision"] == 2
    text = release.deployment("text")
    assert deployment_available(text)
    assert int(text["metadata"]["annotations"]["deployment.kubernetes.io/revision"]) == int(revision) + 1
    after = {c: release.pod_name(c) for c in COMPONENTS}
    assert after["text"] != before["text"]
    assert {c: after[c] for c in ("router", "image", "audio")} == {c: before[c] for c in ("router", "image", "audio")}
    (pod,) = kube.pods(NAMESPACE, "text")
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["NEXA_TEXT_N_CTX"] == "1024"
    # The new pod serves, with the new setting.
    assert "holds 1024 tokens" in context_error()
    answer = client.chat.completions.create(
        model="smollm2", messages=[{"role": "user", "content": "Hello"}], max_tokens=4
    )
    assert answer.choices[0].message.content is not None
    timings.append(f"helm upgrade --wait (text context 2048 -> 1024, one Deployment rolled): {took:.0f} s")


def node_containers(namespace: str) -> list[str]:
    """IDs of the Docker containers (pod sandboxes included) the kubelet made for pods of `namespace`."""
    filter_ = f"label=io.kubernetes.pod.namespace={namespace}"
    done = subprocess.run(["docker", "ps", "-aq", "--filter", filter_], capture_output=True, text=True, check=True)
    return done.stdout.split()


def test_uninstall_leaves_only_the_kept_model_cache(kube: Kube, release: Install, model_volume: Path) -> None:
    release.helm.uninstall(RELEASE)
    assert RELEASE not in release.helm.releases()
    wait_until("the release's pods gone", lambda: not kube.items("pods", "-n", NAMESPACE), 180)
    selector = f"app.kubernetes.io/instance={RELEASE}"
    left = [f"{o['kind']}/{o['metadata']['name']}" for o in kube.items(RELEASE_KINDS, "-n", NAMESPACE, "-l", selector)]
    # The chart keeps the model cache claim on purpose (modelCache.persistentVolumeClaim.keep).
    assert left == [f"PersistentVolumeClaim/{CLAIM}"]
    helm_records = kube.items("secrets", "-n", NAMESPACE, "-l", "owner=helm")
    assert helm_records == []
    # No container of the release is left on the node either, once the kubelet's garbage collection
    # (every minute) has removed the stopped ones.
    wait_until("the release's containers removed from the node", lambda: not node_containers(NAMESPACE), 180, 5)
    assert kube.get("pvc", "-n", NAMESPACE, CLAIM)["status"]["phase"] == "Bound"
    assert any(model_volume.rglob("model_index.json"))


def test_a_second_install_reuses_the_model_cache(kube: Kube, release: Install) -> None:
    release.values = base_values()
    release.install("second, model cache kept")
    _, second = release.installs
    # The kept claim is adopted and still holds the built model: nothing is built again.
    assert "Building" not in second["logs"]["image"]
    assert "tiny-sd is already present" in second["logs"]["image"], second["logs"]["image"]
    with port_forward(kube, NAMESPACE, f"{RELEASE}-router", 8000) as url:
        # `--wait` returns once every pod is ready; the router reaches its services through their new
        # Services, which can lag behind that (one CI run posted straight after `--wait` and got a 503,
        # the router's answer for an unreachable service). A client waits for the router's /ready.
        took = wait_until("the router's /ready", lambda: httpx.get(url + "/ready", timeout=10).status_code == 200, 120)
        release.timings.append(f"second install: router /ready {took:.0f} s after helm install --wait returned")
        body = {"prompt": "a lighthouse", "width": 64, "height": 64, "sample_steps": 2, "seed": 1}
        response = httpx.post(url + "/v1/txt2img", json=body, headers=auth(), timeout=180)
        assert response.status_code == 200, response.text


def test_uninstall_with_keep_off_leaves_nothing(kube: Kube, release: Install, model_volume: Path) -> None:
    values = json.loads(json.dumps(release.values))
    values["modelCache"]["persistentVolumeClaim"]["keep"] = False
    release.helm.upgrade(release.chart, RELEASE, values)
    claim = kube.get("pvc", "-n", NAMESPACE, CLAIM)
    assert "helm.sh/resource-policy" not in claim["metadata"].get("annotations", {})
    release.helm.uninstall(RELEASE)
    wait_until("the release's pods gone", lambda: not kube.items("pods", "-n", NAMESPACE), 180)
    selector = f"app.kubernetes.io/instance={RELEASE}"
    assert kube.items(RELEASE_KINDS, "-n", NAMESPACE, "-l", selector) == []
    assert kube.items("secrets", "-n", NAMESPACE, "-l", "owner=helm") == []
    # The volume is Retain: released by the deleted claim, the models still on the host.
    wait_until("the volume released", lambda: kube.get("pv", VOLUME)["status"]["phase"] == "Released", 60)
    assert any(model_volume.rglob("model_index.json"))
