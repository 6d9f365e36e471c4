"""The chart renders, lints clean and yields valid Kubernetes objects for every value set, and each
setting lands where it should (GPUs, autoscaling, keys, ingress, cache, network policy)."""

from __future__ import annotations

import base64
import socket
from collections.abc import Iterator
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
from chart_helpers import (
    CHART,
    MODALITIES,
    NAMESPACE,
    RELEASE,
    VALUE_SETS,
    Manifest,
    Rendered,
    container,
    env_of,
    named_port,
)

# The oldest and the newest Kubernetes schemas kubernetes-validate ships. The chart supports 1.20
# and later (Chart.yaml kubeVersion); 1.20 itself is installed for real by tests/cluster.
KUBE_VERSIONS = ("1.25", "1.37")
# Kinds with no schema in Kubernetes itself (CRDs of the Prometheus Operator).
CRD_KINDS = {"ServiceMonitor"}


def labels_match(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


def pod_labels(deployment: Manifest) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"]["labels"])


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any socket connection fails: the schema check must work offline."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("schema validation tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def test_lint_is_clean(value_set: str) -> None:
    report = helm.lint(CHART, VALUE_SETS[value_set], strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    assert report["total_charts_linted"] == 1
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]  # 2: warning, 3: error
    assert problems == []


def test_current_clusters_get_the_stable_autoscaling_and_disruption_apis(render: Any) -> None:
    # Offline, .Capabilities.APIVersions is Helm's built-in (current) set; on a 1.20-1.22 cluster the
    # chart falls back to autoscaling/v2beta2 and policy/v1beta1 (tests/cluster shows it for real).
    rendered: Rendered = render(VALUE_SETS["scaled-out"])
    assert {h["apiVersion"] for h in rendered.of_kind("HorizontalPodAutoscaler")} == {"autoscaling/v2"}
    assert {p["apiVersion"] for p in rendered.of_kind("PodDisruptionBudget")} == {"policy/v1"}


def test_local_images_are_never_pulled(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["local-images"])
    for deployment in rendered.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        component = deployment["metadata"]["name"].rsplit("-", 1)[1]
        for spec in [*pod.get("initContainers", []), *pod["containers"]]:
            # The tags `docker compose build` gives (compose.yaml), on the node's own engine.
            assert spec["image"] == f"nexa-{component}:latest"
            assert spec["imagePullPolicy"] == "Never"
        requests = container(deployment)["resources"]["requests"]
        assert requests["cpu"] in ("100m", "250m")  # a rolling update's extra pod fits on 2 cores
    (claim,) = rendered.of_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"] and "storageClassName" not in claim["spec"]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_manifests_are_valid_kubernetes_objects(
    render: Any, value_set: str, kube_version: str, no_network: None
) -> None:
    rendered: Rendered = render(VALUE_SETS[value_set])
    checked = set()
    for manifest in rendered.manifests:
        if manifest["kind"] in CRD_KINDS:
            continue
        # strict: unknown fields are errors too (a misspelt key would otherwise be silently dropped).
        kubernetes_validate.validate(manifest, kube_version, strict=True)
        checked.add(manifest["kind"])
    # Any other kind without a schema would have raised SchemaNotFoundError above.
    assert {"Deployment", "Service", "PodDisruptionBudget"} <= checked


def test_service_monitor_selects_every_component(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["ingress-keys"])
    (monitor,) = rendered.of_kind("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    selector = monitor["spec"]["selector"]["matchLabels"]
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [NAMESPACE]
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    selected = [s for s in rendered.of_kind("Service") if labels_match(selector, s["metadata"]["labels"])]
    assert {s["metadata"]["name"] for s in selected} == {f"{RELEASE}-nexa-{c}" for c in ("router", *MODALITIES)}
    for service in selected:
        assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}


def test_every_service_selects_exactly_its_deployment(render: Any, value_set: str) -> None:
    rendered: Rendered = render(VALUE_SETS[value_set])
    for service in rendered.of_kind("Service"):
        selector = service["spec"]["selector"]
        targets = [d for d in rendered.of_kind("Deployment") if labels_match(selector, pod_labels(d))]
        assert [d["metadata"]["name"] for d in targets] == [service["metadata"]["name"]]
        for port in service["spec"]["ports"]:
            named_port(container(targets[0]), port["targetPort"])
    for deployment in rendered.of_kind("Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert labels_match(selector, pod_labels(deployment))


def test_defaults_deploy_every_service_securely(render: Any) -> None:
    rendered: Rendered = render({})
    assert rendered.names("Deployment") == {f"{RELEASE}-nexa-{c}" for c in ("router", *MODALITIES)}
    assert rendered.of_kind("HorizontalPodAutoscaler") == []
    assert rendered.of_kind("Secret") == []
    assert "no API keys" in rendered.notes
    for modality in MODALITIES:
        assert rendered.component("Service", modality)["spec"]["type"] == "ClusterIP"
    for deployment in rendered.of_kind("Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001
        assert pod["automountServiceAccountToken"] is False
        mounts_by_volume = {}
        for spec in [*pod.get("initContainers", []), *pod["containers"]]:
            security = spec["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert "nvidia.com/gpu" not in spec["resources"].get("limits", {})
            mounts_by_volume.update({m["name"]: m["mountPath"] for m in spec["volumeMounts"]})
        # With a read-only root filesystem, every folder the service writes to must be a volume.
        env = env_of(container(deployment))
        writable = ["/tmp", *(env[k] for k in ("NEXA_CACHE", "NEXA_IMAGE_OUTPUT_DIR") if k in env)]
        assert set(writable) <= set(mounts_by_volume.values())
        assert {v["name"] for v in pod["volumes"]} == set(mounts_by_volume)


def test_services_probe_readiness_with_a_generous_startup_budget(render: Any) -> None:
    rendered: Rendered = render({})
    for modality in MODALITIES:
        main = container(rendered.component("Deployment", modality))
        startup, readiness, liveness = main["startupProbe"], main["readinessProbe"], main["livenessProbe"]
        assert startup["httpGet"]["path"] == "/ready"
        assert readiness["httpGet"]["path"] == "/ready"
        assert liveness["httpGet"]["path"] == "/health"
        # Loading a large model from a cold cache takes minutes: allow at least ten before a restart.
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 600
    router = container(rendered.component("Deployment", "router"))
    # The router's /ready needs every service ready; one modality down must not take the API down.
    assert router["readinessProbe"]["httpGet"]["path"] == "/health"


def test_model_and_pull_step_use_the_cache_volume(render: Any) -> None:
    rendered: Rendered = render({})
    # The audio service serves the voice piper-joe beside Whisper by default, so its pull step fetches both.
    defaults = (("text", "smollm2", []), ("image", "tiny-sd", []), ("audio", "whisper-tiny.en", ["piper-joe"]))
    for modality, model, more in defaults:
        pod = rendered.component("Deployment", modality)["spec"]["template"]["spec"]
        env = env_of(container(rendered.component("Deployment", modality)))
        assert env[f"NEXA_{modality.upper()}_MODEL"] == model
        assert env[f"NEXA_{modality.upper()}_HOST"] == "0.0.0.0"
        (pull,) = pod["initContainers"]
        assert pull["command"] == ["nexa", "pull", model, *more]
        assert pull["image"] == container(rendered.component("Deployment", modality))["image"]
        assert env_of(pull)["NEXA_CACHE"] == env["NEXA_CACHE"]
        cache_mount = next(m for m in pull["volumeMounts"] if m["mountPath"] == env["NEXA_CACHE"])
        assert cache_mount["name"] == "model-cache"
        cache = next(v for v in pod["volumes"] if v["name"] == "model-cache")
        assert "emptyDir" in cache


def test_model_lists_and_limits_are_set_per_modality(render: Any) -> None:
    values = {"text": {"models": ["gemma3-270m", "gemma"], "maxLoadedModels": 1, "memoryBudgetMb": 1500,
                       "keepAlive": "10m"}}  # fmt: skip
    rendered: Rendered = render(values)
    text = rendered.component("Deployment", "text")
    env = env_of(container(text))
    assert env["NEXA_TEXT_MODELS"] == "gemma3-270m,gemma"
    assert (env["NEXA_TEXT_MAX_LOADED_MODELS"], env["NEXA_TEXT_MEMORY_BUDGET_MB"], env["NEXA_TEXT_KEEP_ALIVE"]) == (
        "1",
        "1500",
        "10m",
    )
    (pull,) = text["spec"]["template"]["spec"]["initContainers"]
    assert pull["command"] == ["nexa", "pull", "smollm2", "gemma3-270m", "gemma"]  # every model it may serve
    audio = env_of(container(rendered.component("Deployment", "audio")))
    assert (audio["NEXA_AUDIO_MODELS"], audio["NEXA_AUDIO_MAX_LOADED_MODELS"], audio["NEXA_AUDIO_KEEP_ALIVE"]) == (
        "piper-joe",
        "3",
        "5m",
    )


def test_gpu_values_give_each_service_one_gpu(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["gpu"])
    for modality in MODALITIES:
        deployment = rendered.component("Deployment", modality)
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["resources"]["limits"]["nvidia.com/gpu"] == 1
        assert main["resources"]["requests"]["cpu"] == "4"  # the values' own resources are kept
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
        assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert main["image"] == f"nexa/{modality}:0.1.0-cuda"
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxSurge"] == 0
        env = env_of(main)
        if modality == "text":
            assert env["NEXA_TEXT_N_GPU_LAYERS"] == "-1"
            assert env["NEXA_TEXT_N_CTX"] == "8192"
        else:
            assert env[f"NEXA_{modality.upper()}_DEVICE"] == "cuda"
    router = rendered.component("Deployment", "router")
    assert "nvidia.com/gpu" not in container(router)["resources"].get("limits", {})
    assert "tolerations" not in router["spec"]["template"]["spec"]
    assert container(router)["image"] == "nexa/router:0.1.0"


def test_cpu_values_keep_services_off_gpus(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["cpu-only"])
    threads = {"text": "NEXA_TEXT_THREADS", "image": "NEXA_IMAGE_THREADS", "audio": "NEXA_AUDIO_THREADS"}
    for modality in MODALITIES:
        main = container(rendered.component("Deployment", modality))
        env = env_of(main)
        assert env[threads[modality]] == "2"
        assert env.get("NEXA_TEXT_N_GPU_LAYERS", "0") == "0"
        assert env.get(f"NEXA_{modality.upper()}_DEVICE", "cpu") == "cpu"
        assert main["image"] == f"nexa/{modality}:0.1.0"
        assert "nvidia.com/gpu" not in main["resources"]["limits"]


def test_a_shared_claim_caches_models_for_every_service(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["cpu-only"])
    (claim,) = rendered.of_kind("PersistentVolumeClaim")
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "10Gi"
    assert claim["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    for modality in MODALITIES:
        volumes = rendered.component("Deployment", modality)["spec"]["template"]["spec"]["volumes"]
        cache = next(v for v in volumes if v["name"] == "model-cache")
        assert cache["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]


def test_only_text_when_the_others_are_off(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["text-only"])
    names = {f"{RELEASE}-nexa-router", f"{RELEASE}-nexa-text"}
    assert rendered.names("Deployment") == names
    assert rendered.names("Service") == names
    assert rendered.names("NetworkPolicy") == {f"{RELEASE}-nexa-text"}
    assert rendered.names("PodDisruptionBudget") == names
    env = env_of(container(rendered.component("Deployment", "router")))
    assert [k for k in env if k.endswith("_URL")] == ["NEXA_ROUTER_TEXT_URL"]
    assert "image: disabled" in rendered.notes


def test_scaled_out_values_autoscale_each_modality(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["scaled-out"])
    autoscalers = {h["metadata"]["name"]: h for h in rendered.of_kind("HorizontalPodAutoscaler")}
    assert set(autoscalers) == {f"{RELEASE}-nexa-{c}" for c in ("router", "text", "audio")}
    for name, hpa in autoscalers.items():
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert "replicas" not in rendered.get("Deployment", name)["spec"]  # the HPA owns the count
        cpu = next(m for m in hpa["spec"]["metrics"] if m["type"] == "Resource")
        assert cpu["resource"]["name"] == "cpu"
    text = autoscalers[f"{RELEASE}-nexa-text"]["spec"]
    assert (text["minReplicas"], text["maxReplicas"]) == (2, 10)
    assert [m["type"] for m in text["metrics"]] == ["Resource", "Pods"]
    assert text["metrics"][1]["pods"]["metric"]["name"] == "nexa_http_in_flight_requests"
    assert text["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 600
    assert rendered.component("Deployment", "image")["spec"]["replicas"] == 2
    assert rendered.component("PodDisruptionBudget", "text")["spec"] == {
        "minAvailable": 1,
        "selector": rendered.component("Deployment", "text")["spec"]["selector"],
    }
    assert "maxUnavailable" in rendered.component("PodDisruptionBudget", "image")["spec"]


def test_ingress_and_api_keys(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["ingress-keys"])
    router_service = rendered.component("Service", "router")
    (ingress,) = rendered.of_kind("Ingress")
    assert ingress["spec"]["ingressClassName"] == "nginx"
    assert ingress["spec"]["tls"] == [{"hosts": ["nexa.example.com"], "secretName": "nexa-example-com-tls"}]
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == "nexa.example.com"
    backend = rule["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": router_service["metadata"]["name"], "port": {"number": 8000}}
    assert router_service["spec"]["ports"][0]["port"] == 8000

    (secret,) = rendered.of_kind("Secret")
    assert base64.b64decode(secret["data"]["api-keys"]).decode() == "change-me-key-one,change-me-key-two"
    router = rendered.component("Deployment", "router")
    keys = next(e for e in container(router)["env"] if e["name"] == "NEXA_ROUTER_API_KEYS")
    assert keys["valueFrom"]["secretKeyRef"] == {"name": secret["metadata"]["name"], "key": "api-keys"}
    assert env_of(container(router), [secret])["NEXA_ROUTER_CORS_ORIGINS"] == "https://chat.example.com"
    # The router reads its keys at start: a change of keys must roll its pods.
    assert "checksum/api-keys" in router["spec"]["template"]["metadata"]["annotations"]
    assert "https://nexa.example.com/" in rendered.notes


def test_network_policies_admit_only_the_router(render: Any, value_set: str) -> None:
    values = VALUE_SETS[value_set]
    rendered: Rendered = render(values)
    router_labels = pod_labels(rendered.component("Deployment", "router"))
    policies = rendered.of_kind("NetworkPolicy")
    if not values.get("networkPolicy", {}).get("enabled", True):
        assert policies == []
        return
    service_deployments = [d for d in rendered.of_kind("Deployment") if not d["metadata"]["name"].endswith("-router")]
    assert len(policies) == len(service_deployments) > 0
    for deployment in service_deployments:
        policy = rendered.get("NetworkPolicy", deployment["metadata"]["name"])["spec"]
        assert labels_match(policy["podSelector"]["matchLabels"], pod_labels(deployment))
        assert policy["policyTypes"] == ["Ingress"]
        (rule,) = policy["ingress"]
        router_peer, *extra = rule["from"]
        assert labels_match(router_peer["podSelector"]["matchLabels"], router_labels)
        # ...and no other pod of the release (services do not call each other).
        for other in service_deployments:
            assert not labels_match(router_peer["podSelector"]["matchLabels"], pod_labels(other))
        assert extra == values.get("networkPolicy", {}).get("extraFrom", [])
        assert rule["ports"] == [{"protocol": "TCP", "port": named_port(container(deployment), "http")}]


def test_existing_secret_claim_registry_and_tags(render: Any) -> None:
    rendered: Rendered = render(VALUE_SETS["existing-resources"])
    assert rendered.of_kind("Secret") == []
    assert rendered.of_kind("PersistentVolumeClaim") == []
    assert rendered.of_kind("ServiceAccount") == []
    router = rendered.component("Deployment", "router")
    keys = next(e for e in container(router)["env"] if e["name"] == "NEXA_ROUTER_API_KEYS")
    assert keys["valueFrom"]["secretKeyRef"] == {"name": "my-keys", "key": "keys"}
    assert "annotations" not in router["spec"]["template"]["metadata"]
    assert container(router)["image"] == "registry.example.com/ml/nexa/router:1.2.3"
    assert rendered.component("Service", "router")["spec"]["type"] == "LoadBalancer"
    images = {m: container(rendered.component("Deployment", m))["image"] for m in MODALITIES}
    # A component's own tag is used as is; a GPU adds "-cuda" only to the default tag.
    assert images == {
        "text": "registry.example.com/ml/nexa/text:1.2.3",
        "image": "registry.example.com/ml/nexa/image:custom",
        "audio": "registry.example.com/ml/nexa/audio:1.2.3",
    }
    for modality in MODALITIES:
        pod = rendered.component("Deployment", modality)["spec"]["template"]["spec"]
        assert "initContainers" not in pod
        assert pod["serviceAccountName"] == "default"
        cache = next(v for v in pod["volumes"] if v["name"] == "model-cache")
        assert cache["persistentVolumeClaim"]["claimName"] == "models"
    image_limits = container(rendered.component("Deployment", "image"))["resources"]["limits"]
    assert image_limits["nvidia.com/gpu"] == 2


def test_router_stores_responses_in_an_existing_postgresql(render: Any) -> None:
    """`router.database.existingSecret` gives every router replica the same database URL, from the
    Secret (never in the manifest); without it the routers keep their own SQLite file."""
    plain = container(render({}).component("Deployment", "router"))
    assert "NEXA_ROUTER_DATABASE_URL" not in {e["name"] for e in plain["env"]}
    values = {"router": {"replicaCount": 3, "database": {"existingSecret": "nexa-db"}, "responsesTtlSeconds": 3600}}
    router = container(render(values).component("Deployment", "router"))
    url = next(e for e in router["env"] if e["name"] == "NEXA_ROUTER_DATABASE_URL")
    assert url["valueFrom"]["secretKeyRef"] == {"name": "nexa-db", "key": "database-url"}
    assert next(e for e in router["env"] if e["name"] == "NEXA_ROUTER_RESPONSES_TTL_S")["value"] == "3600"
