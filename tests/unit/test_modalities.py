"""The modality table is the one list of model services: every other place that names them either
derives from it or agrees with it, checked here (services/ folders, Makefile, pyproject, the
healthcheck, compose, the Helm chart, the services' own settings and routes, the router)."""

from __future__ import annotations

import importlib
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from nexa_common import catalogue
from nexa_common.modalities import MODALITIES, Capability, all_routes, route_for, spec
from nexa_router.app import create_app as create_router
from nexa_router.settings import Settings as RouterSettings

REPO = Path(__file__).resolve().parents[2]
NAMES = [s.name for s in MODALITIES]


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method) for path, ops in doc["paths"].items() for method in ops}


def load_module(path: Path) -> Any:
    module = importlib.util.module_from_spec(spec_ := importlib.util.spec_from_file_location(path.stem, path))  # type: ignore[arg-type]
    assert spec_ is not None and spec_.loader is not None
    spec_.loader.exec_module(module)
    return module


def test_each_modality_has_its_service_folder_and_dockerfile_and_nothing_else_does() -> None:
    assert sorted(p.name for p in (REPO / "services").iterdir() if (p / "pyproject.toml").is_file()) == sorted(NAMES)
    for service in MODALITIES:
        assert (REPO / service.folder / service.package / "__main__.py").is_file()
        assert (REPO / "docker" / f"{service.name}.Dockerfile").is_file()
        project = tomllib.loads((REPO / service.folder / "pyproject.toml").read_text())["project"]
        assert project["name"] == service.distribution
        assert set(service.extras) <= set(project.get("optional-dependencies", {}))


def test_the_makefile_installs_and_checks_every_service() -> None:
    printed = subprocess.run(
        ["make", "-s", "-n", "-B", "-C", str(REPO), ".venv/.installed", "lint"], capture_output=True, text=True
    ).stdout
    for service in MODALITIES:
        extras = f"[{','.join(service.extras)}]" if service.extras else ""
        assert f"-e '{service.folder}{extras}'" in printed
        assert f"-p {service.package}" in printed


def test_the_tool_settings_name_every_package() -> None:
    tools = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]
    assert {s.folder for s in MODALITIES} <= set(tools["mypy"]["mypy_path"].split(":"))
    assert {s.package for s in MODALITIES} <= set(tools["ruff"]["lint"]["isort"]["known-first-party"])


def test_the_healthcheck_knows_every_port() -> None:
    healthcheck = load_module(REPO / "docker" / "healthcheck.py")
    assert {"router": 8000, **{s.name: s.port for s in MODALITIES}} == healthcheck.DEFAULT_PORTS


def test_compose_runs_every_service_with_its_default_model_behind_the_router() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    router_env = compose["services"]["router"]["environment"]
    for service in MODALITIES:
        assert f"{service.env_prefix}MODEL" in compose["services"][service.name]["environment"]
        assert f"${{{service.env_prefix}MODEL:-{service.default_model}}}" in str(compose["services"][service.name])
        assert router_env[service.router_url_env].endswith(f"http://{service.name}:{service.port}}}")


def test_the_chart_lists_every_modality_with_its_port_and_model() -> None:
    helpers = (REPO / "helm" / "nexa" / "templates" / "_helpers.tpl").read_text()
    listed = re.search(r'define "nexa.modalities" -}}\n(.*?)\n', helpers)
    assert listed is not None and listed.group(1).split() == NAMES
    values = yaml.safe_load((REPO / "helm" / "nexa" / "values.yaml").read_text())
    for service in MODALITIES:
        assert values[service.name]["port"] == service.port
        assert values[service.name]["model"] == service.default_model


@pytest.mark.parametrize("service", MODALITIES, ids=NAMES)
def test_each_service_defaults_to_its_port_and_model_and_serves_its_routes(service: Any) -> None:
    settings = importlib.import_module(f"{service.package}.settings").Settings
    assert settings.model_fields["port"].default == service.port
    assert settings.model_fields["model"].default == service.default_model
    assert settings.model_config["env_prefix"] == service.env_prefix
    app = importlib.import_module(f"{service.package}.app").create_app(settings())
    assert {(r.path, r.method.lower()) for r in service.routes} <= operations(app.openapi())
    assert catalogue.lookup(service.default_model) is not None
    assert catalogue.lookup(service.default_model).modality is service.modality  # type: ignore[union-attr]


def test_the_router_serves_every_route_of_the_table_and_no_other_model_route() -> None:
    doc = create_router(RouterSettings(text_url="", image_url="", audio_url="")).openapi()
    v1 = {(path, method) for path, method in operations(doc) if path.startswith("/v1/")}
    own = {("/v1/models", "get"), ("/v1/models/{model_id}", "get"), ("/v1/operator/models", "get"),
           ("/v1/operator/models/load", "post"), ("/v1/operator/models/unload", "post")}  # fmt: skip
    assert {(r.path, r.method.lower()) for _, r in all_routes()} == v1 - own


def test_routes_are_unique_and_every_capability_of_a_route_has_a_route() -> None:
    paths = [(r.path, r.method) for _, r in all_routes()]
    assert len(paths) == len(set(paths))
    for _, route in all_routes():
        if route.capability is not None:
            assert route_for(route.capability) is not None
        if route.body == "multipart":
            assert route.form is not None, f"{route.path}: a multipart route declares its form"
    assert route_for(Capability.CHAT).path == "/v1/chat/completions"  # type: ignore[union-attr]
    assert spec("audio").article == "an" and spec("text").article == "a"


def test_catalogue_capabilities_are_table_words() -> None:
    for entry in catalogue.entries():
        assert entry.capabilities, entry.name
        assert all(isinstance(c, Capability) for c in entry.capabilities)
