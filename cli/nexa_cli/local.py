"""`nexa server` in local mode: the router and the needed services as processes on this machine."""

from __future__ import annotations

import importlib.util
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from nexa_common import catalogue
from nexa_common.catalogue import Backend, BuiltSource, CatalogueEntry, ModelError
from nexa_common.modalities import MODALITIES, Modality, spec
from nexa_common.settings import default_cache_dir

from .catalogue_cmds import build
from .supervisor import ProcessSpec, StartupError, Supervisor, free_port, log_tail, python_module

# Modalities whose service has an ONNX Runtime backend in this build (the modality table says).
ONNX_MODALITIES: tuple[Modality, ...] = tuple(s.modality for s in MODALITIES if s.onnx)
# `nexa server onnx` with no model names.
ONNX_DEFAULTS = {Modality.TEXT: "smollm2-onnx"}


class Shutdown(Exception):
    """SIGTERM or SIGHUP (terminal closed), turned into an exception so the same cleanup as Ctrl-C runs."""


@dataclass(frozen=True)
class Plan:
    """Which models each service serves: its default (the first named) and the others."""

    models: dict[Modality, str]  # modality -> the default model: catalogue name or local path
    more: dict[Modality, list[str]] = field(default_factory=dict)  # modality -> its other models

    def describe(self) -> str:
        return ", ".join(f"{m.value}: {', '.join([name, *self.more.get(m, [])])}" for m, name in self.models.items())


def plan(models: list[str], *, onnx: bool = False, cache_dir: Path | None = None) -> Plan:
    """Resolve the requested models (or the defaults) to the models of each service; raises ModelError.
    Several models of a modality are served by one service, the first named being its default."""
    cache_dir = cache_dir or default_cache_dir()
    names = models or list(ONNX_DEFAULTS.values() if onnx else catalogue.SERVED_BY_DEFAULT)
    chosen: dict[Modality, str] = {}
    more: dict[Modality, list[str]] = {}
    for requested in names:
        found = catalogue.find(requested)
        entry = onnx_variant(found) if onnx else found
        name = requested if entry is found else entry.name  # a local path stays as given
        _ensure_present(entry, name, cache_dir)
        if entry.modality not in chosen:
            chosen[entry.modality] = name  # the first model of a modality is its service's default
        elif name != chosen[entry.modality] and name not in more.get(entry.modality, []):
            more.setdefault(entry.modality, []).append(name)
    return Plan(chosen, more)


def onnx_variant(entry: CatalogueEntry) -> CatalogueEntry:
    """The ONNX model to serve for `nexa server onnx NAME`: NAME itself when it is an ONNX model,
    else its `NAME-onnx` catalogue variant; raises ModelError saying what has an ONNX backend."""
    have = ", ".join(m.value for m in ONNX_MODALITIES)
    if entry.modality not in ONNX_MODALITIES:
        raise ModelError(
            f"'{entry.name}' is an {entry.modality.value} model, and only these modalities have an ONNX Runtime "
            f"backend: {have}. Serve it without `onnx`."
        )
    if entry.backend is Backend.ONNX:
        return entry
    variant = catalogue.lookup(f"{entry.name}-onnx")
    if variant is None or variant.backend is not Backend.ONNX:
        onnx_models = ", ".join(e.name for e in catalogue.entries() if e.backend is Backend.ONNX)
        raise ModelError(
            f"'{entry.name}' is a {entry.backend.value} model with no ONNX variant in the catalogue. ONNX models: "
            f"{onnx_models}, or a local ONNX Runtime GenAI folder (with genai_config.json). Serve it without `onnx`."
        )
    return variant


def _ensure_present(entry: CatalogueEntry, name: str, cache_dir: Path) -> None:
    """Fail before starting anything if a model is missing; build locally-built models on first use."""
    if isinstance(entry.source, BuiltSource) and not catalogue.is_present(entry, cache_dir):
        build(entry, cache_dir)
    catalogue.resolve(name, cache_dir)
    service = spec(entry.modality)
    if importlib.util.find_spec(service.package) is None:
        raise ModelError(
            f"'{name}' needs the {service.name} service, which is not installed "
            f"(pip install {service.distribution}, or `make install` in the repository)."
        )


def service_specs(p: Plan, *, reload: bool, n_ctx: int | None) -> list[ProcessSpec]:
    specs = []
    for modality, model in p.models.items():
        service = spec(modality)
        prefix = service.env_prefix
        port = free_port()
        env = {prefix + "MODEL": model, prefix + "HOST": "127.0.0.1", prefix + "PORT": str(port)}
        env[prefix + "MODELS"] = ",".join(p.more.get(modality, []))
        # On this machine, every model that is installed (or pulled while the server runs) is servable.
        env[prefix + "ALLOW_ANY_INSTALLED"] = "true"
        if modality is Modality.TEXT and n_ctx:
            env[prefix + "N_CTX"] = str(n_ctx)
        argv = python_module(service.package, *(["--reload"] if reload else []))
        specs.append(ProcessSpec(service.name, argv, port, env))
    return specs


def router_spec(services: list[ProcessSpec], host: str, port: int, reload: bool) -> ProcessSpec:
    env = {"NEXA_ROUTER_HOST": host, "NEXA_ROUTER_PORT": str(port)}
    env.update({spec(s.name).router_url_env: s.url for s in services})
    argv = python_module("nexa_router", *(["--reload"] if reload else []))
    return ProcessSpec("router", argv, port, env, host=host)


def _raise_shutdown(signum: int, frame: FrameType | None) -> None:
    raise Shutdown()


def serve(
    models: list[str],
    *,
    host: str,
    port: int,
    reload: bool,
    onnx: bool,
    n_ctx: int | None,
    log_dir: Path | None = None,
    ready_timeout_s: float = 600.0,
) -> int:
    """Start everything, report where the API is, and run until Ctrl-C/SIGTERM or a child dies."""
    p = plan(models, onnx=onnx)
    log_dir = log_dir or default_cache_dir() / "logs" / time.strftime("%Y%m%d-%H%M%S")
    previous = {sig: signal.signal(sig, _raise_shutdown) for sig in (signal.SIGTERM, signal.SIGHUP)}
    # A shell starting us in the background hands SIGINT down ignored; Ctrl-C / kill -INT must still stop us.
    previous[signal.SIGINT] = signal.signal(signal.SIGINT, signal.default_int_handler)
    supervisor = Supervisor(log_dir)
    try:
        services = service_specs(p, reload=reload, n_ctx=n_ctx)
        print(f"nexa: starting {p.describe()} (logs in {log_dir})", flush=True)
        children = [supervisor.start(spec) for spec in services]
        for child in children:
            supervisor.wait_ready(child, ready_timeout_s)
        router = supervisor.start(router_spec(services, host, port, reload))
        supervisor.wait_ready(router, 60.0)
        print(f"nexa: serving at {router.spec.url} (OpenAI base URL {router.spec.url}/v1). Ctrl-C stops.", flush=True)
        while True:
            dead = supervisor.first_exited()
            if dead is not None:
                print(
                    f"nexa: {dead.spec.name} exited with code {dead.process.returncode}; stopping. "
                    f"Last lines of its log:\n{log_tail(dead.log_path)}",
                    file=sys.stderr,
                )
                return 1
            time.sleep(0.2)
    except StartupError as exc:
        print(f"nexa: {exc}", file=sys.stderr)
        return 1
    except (KeyboardInterrupt, Shutdown):
        print("nexa: stopping", file=sys.stderr, flush=True)
        return 0
    finally:
        supervisor.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
