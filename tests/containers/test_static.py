"""Static checks of the Dockerfiles and compose files, above all for what cannot be built here.

The CUDA variants need nvidia/cuda base images, which no registry on CI serves: these tests make
sure every Dockerfile parses, every build arg a compose file passes is declared where it is used,
and the compose files say what the deployment promises (one published port on 127.0.0.1, an
internal network, profiles, healthchecks, GPU reservations). They need no Docker, except the last.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from compose_helpers import REPO, require_docker

from nexa_common.catalogue import DEFAULTS, Modality

INSTRUCTIONS = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
    "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip
SERVICES = ("router", "text", "image", "audio")
MODEL_SERVICES = ("text", "image", "audio")
VARIABLE = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class Stage:
    base: str
    name: str | None
    args: set[str] = field(default_factory=set)
    env: set[str] = field(default_factory=set)
    instructions: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: list[Stage]


def parse(path: Path) -> Dockerfile:
    """Docker's own line rules: `#` comment lines, `\\` continuations, KEYWORD then arguments."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        if raw.strip().startswith("#"):
            continue
        line = raw.rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        if pending.strip():
            logical.append(pending.strip())
        pending = ""
    assert not pending.strip(), f"{path.name}: the last line ends in a continuation"
    global_args: dict[str, str | None] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        assert keyword in INSTRUCTIONS, f"{path.name}: unknown instruction {keyword!r}"
        if keyword in ("CMD", "ENTRYPOINT") or (keyword == "HEALTHCHECK" and "CMD [" in rest):
            exec_form = rest[rest.index("[") :] if keyword == "HEALTHCHECK" else rest
            assert isinstance(json.loads(exec_form), list), f"{path.name}: {keyword} exec form is not a JSON list"
        if keyword == "FROM":
            parts = rest.split()
            stages.append(Stage(parts[0], parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None))
            continue
        if keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            global_args[name] = default or None
            continue
        assert stages, f"{path.name}: {keyword} before the first FROM"
        stage = stages[-1]
        if keyword == "ARG":
            stage.args.add(rest.partition("=")[0])
        elif keyword == "ENV":
            stage.env.update(m.group(1) for m in re.finditer(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", rest))
        stage.instructions.append((keyword, rest))
    return Dockerfile(global_args, stages)


def dockerfile_of(service: str) -> Path:
    return REPO / compose()["services"][service]["build"]["dockerfile"]


def compose(name: str = "compose.yaml") -> dict[str, Any]:
    data = yaml.safe_load((REPO / name).read_text())
    assert isinstance(data, dict)
    return data


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_parses_into_a_small_non_root_final_stage_with_a_healthcheck(service: str) -> None:
    path = dockerfile_of(service)
    parsed = parse(path)
    assert len(parsed.stages) >= 2, "multi-stage: build tools and caches stay in the builder"
    names = {s.name for s in parsed.stages if s.name}
    for stage in parsed.stages:
        for variable in VARIABLE.findall(stage.base):
            assert variable in parsed.global_args, f"{path.name}: FROM uses {variable}, not a global ARG"
        for keyword, rest in stage.instructions:
            source = re.match(r"--from=(\S+)", rest)
            if keyword == "COPY" and source:
                assert source.group(1) in names, f"{path.name}: COPY --from an unknown stage"
            elif keyword in ("COPY", "ADD"):
                paths = rest.split()[:-1]
                assert any((REPO / p).exists() for p in paths), f"{path.name}: nothing to copy in {rest!r}"
            if keyword == "RUN":
                for variable in VARIABLE.findall(rest):
                    assert variable in stage.args | stage.env | {"PATH"}, (
                        f"{path.name}: RUN uses ${variable}, declared neither as ARG nor ENV in its stage"
                    )
    final = parsed.stages[-1]
    keywords = [k for k, _ in final.instructions]
    assert "HEALTHCHECK" in keywords and "CMD" in keywords
    user = [rest for k, rest in final.instructions if k == "USER"]
    assert user and user[-1].split(":")[0] not in ("0", "root"), "the final stage must run as a non-root user"
    assert not any(k == "RUN" and re.search(r"\b(gcc|build-essential|cmake)\b", r) for k, r in final.instructions)
    assert f"nexa_{service}" in dict(final.instructions)["CMD"]


@pytest.mark.parametrize("file", ["compose.yaml", "compose.cuda.yaml"])
def test_every_build_arg_a_compose_file_passes_is_declared_in_the_dockerfile(file: str) -> None:
    for service, spec in compose(file)["services"].items():
        if "build" not in spec:
            continue  # a stock image (the optional postgres)
        args = (spec.get("build") or {}).get("args") or {}
        parsed = parse(dockerfile_of(service))
        declared = set(parsed.global_args) | {a for s in parsed.stages for a in s.args}
        missing = set(args) - declared
        assert not missing, f"{file}: {service} gets build args its Dockerfile does not declare: {missing}"
        if "ACCELERATOR" in args:  # used by the builder's install step, so it must be an ARG of that stage
            assert "ACCELERATOR" in parsed.stages[0].args


def test_the_cuda_file_builds_gpu_variants_of_the_model_services_and_reserves_gpus() -> None:
    cuda = compose("compose.cuda.yaml")["services"]
    base = compose()["services"]
    assert set(cuda) == set(MODEL_SERVICES), "the router runs no model and needs no CUDA variant"
    for service in MODEL_SERVICES:
        spec = cuda[service]
        assert spec["build"]["args"]["ACCELERATOR"] == "cuda"
        devices = spec["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
        assert spec["image"] != base[service]["image"], "CUDA images need their own tag"
    assert "GGML_CUDA=on" in cuda["text"]["build"]["args"]["LLAMA_CMAKE_ARGS"]
    for service in ("text", "audio"):
        for arg in ("BASE_IMAGE", "BUILDER_IMAGE"):
            assert cuda[service]["build"]["args"][arg].startswith("nvidia/cuda:")
    assert "cudnn" in cuda["audio"]["build"]["args"]["BASE_IMAGE"], "CTranslate2 on CUDA needs cuDNN"
    assert cuda["text"]["environment"]["NEXA_TEXT_N_GPU_LAYERS"]
    assert cuda["audio"]["environment"]["NEXA_AUDIO_DEVICE"] == "cuda"
    assert cuda["image"]["environment"]["NEXA_IMAGE_DEVICE"] == "cuda"


def test_compose_publishes_only_the_router_on_loopback_and_keeps_services_internal() -> None:
    data = compose()
    services = data["services"]
    assert data["networks"]["backend"]["internal"] is True
    assert services["router"]["ports"] == ["${NEXA_HOST:-127.0.0.1}:${NEXA_PORT:-8000}:8000"]
    assert "profiles" not in services["router"], "the router always starts"
    for service in MODEL_SERVICES:
        spec = services[service]
        assert "ports" not in spec, f"{service} must not be published"
        assert spec["networks"] == ["backend"]
        assert spec["profiles"] == [service]
        assert spec["restart"] in ("always", "unless-stopped")
        assert spec["healthcheck"]["test"][-1] == "/ready"
        assert "models:/models" in spec["volumes"]
        default = DEFAULTS[Modality(service)]
        assert spec["environment"][f"NEXA_{service.upper()}_MODEL"] == f"${{NEXA_{service.upper()}_MODEL:-{default}}}"
    assert "models" in data["volumes"]


def test_the_build_context_leaves_out_what_images_do_not_need() -> None:
    lines = (REPO / ".dockerignore").read_text().split()
    assert lines[lines.index("*")] == "*", "everything is excluded unless listed"
    assert not any(line in ("!.venv", "!.git", "!tests") for line in lines)


def test_docker_compose_accepts_the_cpu_and_cuda_files() -> None:
    require_docker()
    for files in (["compose.yaml"], ["compose.yaml", "compose.cuda.yaml"]):
        argv = ["docker", "compose", *(a for f in files for a in ("-f", str(REPO / f))), "config", "--quiet"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
