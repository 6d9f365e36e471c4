"""The models a service hosts, as one object the service owns: which models it can serve, which are
loaded, and each one's status (available, loading, loaded, failed, failed-after-loaded included),
engine and admission queue.

- A request names its model (a catalogue name, an alias, or a model given at start); the pool
  answers 404/400 for one it cannot serve, saying why, and loads one that is not loaded while the
  request waits. Requests for a model being loaded share that one load. A request without `model`
  gets the default model, or, on a route the default cannot serve, the first model given at start
  that can (the audio service's speech route: its first voice).
- Limits: at most `max_loaded_models`, within `memory_budget_mb` (estimated from the model's files
  and context before the load, measured after it). To make room the least recently used idle
  model is unloaded; a model with requests running or waiting, or pinned, never is. A model that
  can never fit is refused at once with the numbers.
- An idle model is unloaded after its keep-alive (the setting, or the last request's
  `keep_alive`); pinned models stay.
- Loaders are given per backend (the text service: GGUF and ONNX). A loader may run its models in
  worker processes (`isolated`): unloading one is then a process exit, which gives all its
  memory back whatever the library keeps.
- A dead engine: in-process, the service reports it and exits so it is restarted; in a worker, the
  model is unloaded and loads again on the next request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import psutil
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from ..admission import AdmissionQueue
from ..catalogue import (
    Backend,
    CatalogueEntry,
    ModelError,
    ModelNotAvailable,
    ResolvedModel,
    entries,
    find,
    locate,
    lookup,
)
from ..errors import APIError
from ..modalities import Capability, ModalitySpec
from ..model_errors import entry_wrong_route, not_found, not_pulled
from ..schemas.common import Readiness
from ..schemas.models import LoadedModel, ModelCard
from ..settings import ServiceSettings

log = logging.getLogger("nexa.models")

State = Literal["available", "loading", "loaded", "failed"]
MIB = 1024 * 1024
WATCH_INTERVAL_S = 0.5
"""How often loaded engines are asked whether they still work, and idle models whether they expired."""
_LOAD_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class Engine(Protocol):
    """What the pool needs of a loaded model: how many requests it runs at once, and a way to free it."""

    slots: int

    def close(self) -> None: ...


@runtime_checkable
class Watched(Protocol):
    """An engine that can tell it has stopped working (a scheduler thread, a worker process that died)."""

    def failure(self) -> str | None:
        """Why the engine cannot serve any more, or None while it works."""
        ...


@runtime_checkable
class Measured(Protocol):
    """An engine that knows its own memory (one in a worker process: the worker's RSS)."""

    def memory_bytes(self) -> int: ...


Loader = Callable[[ResolvedModel], Engine]
"""Builds the engine of a resolved model; blocking, run in a worker thread."""


def files_bytes(path: Path) -> int:
    """The size of a model's files (a file, or everything in a folder)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@dataclass(frozen=True)
class BackendLoader:
    """How a service loads the models of one backend."""

    load: Loader
    estimate: Callable[[ResolvedModel], int] = lambda model: files_bytes(model.path)
    """Bytes the loaded model will take (its weights and, for text, its KV cache)."""
    isolated: bool = False
    """Its engines run in worker processes (`kit.worker`), so unloading one ends a process."""


@dataclass
class Lease:
    """A request's hold on a slot of a model (see `ModelPool.slot`)."""

    model: PooledModel
    engine: Engine
    error: BaseException | None = None
    """An engine failure that did not propagate (a stream answers it as an error event): set it, so it
    counts against the engine's health when the slot is given back."""


class PooledModel:
    """One servable model: its status, and once loaded its engine and admission queue."""

    def __init__(self, name: str, entry: CatalogueEntry | None, settings: ServiceSettings) -> None:
        self.name = name
        self.entry = entry
        self.settings = settings
        self.state: State = "available"
        self.detail: str | None = None
        self.engine: Engine | None = None
        self.admission: AdmissionQueue | None = None
        self.created = int(time.time())
        self.loaded_at: int | None = None
        self.last_used = time.monotonic()
        self.keep_alive_s: float | None = settings.keep_alive_seconds()
        """How long the model stays loaded once idle (None: for ever); a request's `keep_alive` or an
        unload asked for while it is busy changes it until the model is next unloaded."""
        self.usual_keep_alive_s = self.keep_alive_s
        self.expires_at: float | None = None
        self.pinned = False
        self.estimate_bytes = 0
        self.memory_bytes = 0
        self.users = 0
        """Requests holding the model (waiting for its load or a slot, or being served): never unloaded then."""
        self.load_waiting = 0
        self.failures_in_a_row = 0
        self.failed_at: float | None = None
        self.ever_loaded = False
        self.load: asyncio.Task[None] | None = None

    @property
    def waiting(self) -> int:
        return self.admission.waiting if self.admission else 0

    @property
    def running(self) -> int:
        return self.admission.running if self.admission else 0

    @property
    def busy(self) -> bool:
        return self.users > 0 or self.waiting > 0 or self.running > 0

    def fail(self, reason: str) -> None:
        self.state, self.detail, self.failed_at = "failed", reason, time.monotonic()

    def readiness(self) -> Readiness:
        status = {"loaded": "ready", "failed": "failed"}.get(self.state, "loading")
        return Readiness(status=status, model=self.name, detail=self.detail)  # type: ignore[arg-type]

    def card(self) -> ModelCard:
        assert self.entry is not None
        return ModelCard(
            id=self.name,
            created=self.loaded_at or self.created,
            modality=self.entry.modality,
            backend=self.entry.backend.value,
            state=self.state,
            capabilities=list(self.entry.capabilities),
            aliases=list(self.entry.aliases),
        )

    def loaded(self) -> LoadedModel:
        assert self.entry is not None
        return LoadedModel(
            id=self.name,
            modality=self.entry.modality,
            state=self.state,
            pinned=self.pinned,
            keep_alive_s=self.keep_alive_s,
            expires_at=self.expires_at,
            memory_bytes=self.memory_bytes or self.estimate_bytes,
            active=self.running,
            queued=self.waiting + self.load_waiting,
            loaded_at=self.loaded_at,
        )

    def require_ready(self) -> Engine:
        """The engine, or a 503 saying why there is none (still loading, failed, stopped working)."""
        if self.state == "loaded" and self.engine is not None:
            return self.engine
        if self.state == "failed":
            what = "stopped working" if self.ever_loaded else "failed to load"
            raise APIError(503, f"Model '{self.name}' {what}: {self.detail}", code="model_failed")
        raise APIError(
            503,
            f"Model '{self.name}' is still loading; retry shortly.",
            code="model_loading",
            headers={"Retry-After": str(self.settings.retry_after_s)},
        )


class PoolMetrics:
    """The pool's metrics, registered once per service: queue gauges over all models, and per model
    whether it is loaded, its memory, its load times, its evictions and the requests waiting for it."""

    def __init__(self, registry: CollectorRegistry, spec: ModalitySpec, pool: ModelPool) -> None:
        prefix = f"nexa_{spec.name}"
        Gauge(f"{prefix}_queue_depth", "Requests waiting for a model", registry=registry).set_function(
            lambda: pool.waiting
        )
        Gauge(f"{prefix}_running", "Requests being served by a model", registry=registry).set_function(
            lambda: pool.running
        )
        self.loaded = Gauge(f"{prefix}_model_loaded", "1 while the model is loaded", ["model"], registry=registry)
        self.memory = Gauge(
            f"{prefix}_model_memory_bytes", "Memory a loaded model takes (measured)", ["model"], registry=registry
        )
        self.load_seconds = Histogram(
            f"{prefix}_model_load_seconds", "Time to load a model", ["model"], buckets=_LOAD_BUCKETS, registry=registry
        )
        self.evictions = Counter(
            f"{prefix}_model_evictions",
            "Models unloaded: to make room, idle past their keep-alive, by the operator, or after their engine died",
            ["model", "reason"],
            registry=registry,
        )
        self.load_waiting = Gauge(
            f"{prefix}_model_load_waiting", "Requests waiting for a model to be loaded", ["model"], registry=registry
        )


class ModelPool:
    """The models a service serves; the service creates one and keeps it on its state."""

    def __init__(
        self,
        spec: ModalitySpec,
        settings: ServiceSettings,
        loaders: Mapping[Backend, BackendLoader | Loader],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.loaders = {
            backend: loader if isinstance(loader, BackendLoader) else BackendLoader(loader)
            for backend, loader in loaders.items()
        }
        self.metrics = PoolMetrics(registry or CollectorRegistry(), spec, self)
        self.fatal_reason: str | None = None
        self._fatal: asyncio.Event | None = None
        self._room_lock: asyncio.Lock | None = None
        self._room_changed: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.models: dict[str, PooledModel] = {}
        """Every model the pool knows: those given at start, and those it met since."""
        self.budget_bytes = settings.memory_budget_bytes()
        names = [settings.model or spec.default_model, *settings.models]
        self.configured = [self._configure(name) for name in dict.fromkeys(n for n in names if n)]
        self.default = self.configured[0]
        # The default model (what requests without `model` get) is not unloaded for being idle, only
        # to make room (or when a request's keep_alive says so); the others come and go.
        self.default.keep_alive_s = self.default.usual_keep_alive_s = None
        for model in self.configured:
            model.pinned = model.name in settings.pinned_models

    # --- which models ------------------------------------------------------------------------

    def _configure(self, name: str) -> PooledModel:
        """A model given at start; one that cannot be served is failed, with the reason."""
        try:
            entry: CatalogueEntry | None = find(name)
        except ModelError as exc:
            model = PooledModel(Path(name).name or name, None, self.settings)
            self._refuse(model, str(exc))
            return self.models.setdefault(model.name, model)
        assert entry is not None
        model = self.models.setdefault(entry.name, PooledModel(entry.name, entry, self.settings))
        if entry.modality is not self.spec.modality:
            self._refuse(
                model,
                f"'{entry.name}' is a {entry.modality.value} model, not {self.spec.article} {self.spec.name} model",
            )
        elif entry.backend not in self.loaders:
            runs = " and ".join(b.value for b in self.loaders)
            self._refuse(model, f"the {self.spec.name} service runs {runs} models, not {entry.backend.value} ones")
        return model

    def _refuse(self, model: PooledModel, reason: str) -> None:
        model.fail(reason)
        log.error("cannot serve model %s: %s", model.name, reason)

    def _installed(self) -> Iterable[CatalogueEntry]:
        """Catalogue models of this service that are on this machine (looked at now: a model pulled
        while the server runs counts at once)."""
        for entry in entries():
            if entry.modality is self.spec.modality and entry.backend in self.loaders and self._present(entry):
                yield entry

    def _present(self, entry: CatalogueEntry) -> bool:
        try:
            locate(entry, self.settings.cache_dir)
        except ModelError:
            return False
        return True

    def servable(self) -> list[PooledModel]:
        """What this service can serve now: the models given at start, those it has loaded, and, where
        the operator allows it, every installed model of its modality."""
        if self.settings.allow_any_installed:
            for entry in self._installed():
                self.models.setdefault(entry.name, PooledModel(entry.name, entry, self.settings))
        return [m for m in self.models.values() if m.entry is not None and self._servable(m)]

    def _servable(self, model: PooledModel) -> bool:
        if model.entry is None or model.entry.modality is not self.spec.modality:
            return False
        if model.entry.backend not in self.loaders:
            return False
        return model in self.configured or self.settings.allow_any_installed or model.state != "available"

    def get(self, name: str | None = None, capability: Capability | None = None) -> PooledModel:
        """The model a request names (None: the default), or the 404/400 saying why it cannot be served."""
        model = (self.models.get(name) or self._find(name)) if name else self._default_for(capability)
        # A model the service cannot serve at all (its configuration is wrong) says so as a 503 instead.
        refused = model.state == "failed" and not self._may_retry(model) and not model.ever_loaded
        if capability is not None and not refused and model.entry and capability not in model.entry.capabilities:
            raise self._wrong_route(model.entry)
        return model

    def _default_for(self, capability: Capability | None) -> PooledModel:
        """What a request without `model` gets: the default model, or on a route it cannot serve the first
        model given at start that can (the audio service's default is Whisper: speech gets its first voice),
        else, where installed models are servable, the first installed one; else a 404 saying so."""
        entry = self.default.entry
        if capability is None or entry is None or capability in entry.capabilities:
            return self.default
        for model in self.configured:
            if model.entry is not None and capability in model.entry.capabilities:
                return model
        if self.default.state == "failed" and not self.default.ever_loaded:
            return self.default  # a default the service could never serve: its 503 says why
        if self.settings.allow_any_installed:
            for installed in self._installed():
                if capability in installed.capabilities:
                    return self.models.setdefault(installed.name, PooledModel(installed.name, installed, self.settings))
        refused = "; ".join(f"'{m.name}' could not be served: {m.detail}" for m in self.configured if m.entry is None)
        named = ", ".join(m.name for m in self.servable() if m.entry and capability in m.entry.capabilities)
        raise APIError(
            404,
            f"This {self.spec.name} service was started with no {capability.value} model, and the request "
            f"names none: start it with one, which requests without `model` then get (`nexa server NAME`, "
            f"or {self.spec.env_prefix}MODELS), or name one in `model`"
            f"{f' ({named})' if named else ''}{f' ({refused})' if refused else ''}.",
            param="model",
            code="model_not_found",
        )

    def _find(self, name: str) -> PooledModel:
        entry = lookup(name)  # catalogue names and aliases only: a request never names a path
        if entry is not None and entry.name in self.models:
            model = self.models[entry.name]
            if self._servable(model):
                return model
        if entry is None:
            raise self._not_found(name)
        if entry.modality is not self.spec.modality or entry.backend not in self.loaders:
            raise self._wrong_route(entry)
        if not self.settings.allow_any_installed:
            raise self._not_found(name, hint=f"start the server with it (`nexa server {entry.name}`, or "
                                  f"{self.spec.env_prefix}MODELS)")  # fmt: skip
        try:
            locate(entry, self.settings.cache_dir)
        except ModelNotAvailable as exc:
            raise self._not_pulled(entry, str(exc)) from None
        return self.models.setdefault(entry.name, PooledModel(entry.name, entry, self.settings))

    def _not_found(self, name: str, hint: str | None = None) -> APIError:
        return not_found(name, (m.name for m in self.servable()), f"this {self.spec.name} service", hint)

    def _wrong_route(self, entry: CatalogueEntry) -> APIError:
        return entry_wrong_route(entry)

    def _not_pulled(self, entry: CatalogueEntry, reason: str) -> APIError:
        return not_pulled(entry, reason)

    # --- loading -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the default model in the background (so /health answers at once), and watch engines."""
        self._fatal, self._room_lock, self._room_changed = asyncio.Event(), asyncio.Lock(), asyncio.Event()
        for model in self.configured:
            if model.state == "failed":
                continue
            assert model.entry is not None
            try:
                locate(model.entry, self.settings.cache_dir)
            except ModelError as exc:
                self._refuse(model, str(exc))
        if self.default.state != "failed":
            self._spawn(self._preload(self.default))
        self._spawn(self._watch())

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _preload(self, model: PooledModel) -> None:
        try:
            async with self.use(model):
                pass
        except APIError as exc:
            if model.state != "failed":  # e.g. a model that can never fit the budget
                self._refuse(model, exc.message)

    @contextlib.asynccontextmanager
    async def use(
        self, model: PooledModel, keep_alive_s: float | Literal[False] | None = False
    ) -> AsyncIterator[Engine]:
        """Hold the model for a request (it is never unloaded meanwhile), loading it first if needed.
        `keep_alive_s` (seconds, None for ever) replaces its keep-alive once the request is done."""
        model.users += 1
        try:
            yield await self._loaded(model)
        finally:
            model.users -= 1
            model.last_used = time.monotonic()
            if keep_alive_s is not False:
                model.keep_alive_s = keep_alive_s
            self._released(model)

    async def _loaded(self, model: PooledModel) -> Engine:
        while True:
            if self.fatal_reason is not None:
                raise APIError(503, f"The {self.spec.name} service is restarting: {self.fatal_reason}",
                               code="model_failed")  # fmt: skip
            if model.state == "loaded" and model.engine is not None:
                return model.engine
            if model.state == "failed" and not self._may_retry(model):
                model.require_ready()
            if model.load is None:
                await self._start_load(model)
            task = model.load
            if task is None:
                continue
            model.load_waiting += 1
            self.metrics.load_waiting.labels(model.name).set(model.load_waiting)
            try:
                await asyncio.shield(task)  # a client that leaves stops waiting; the shared load goes on
            finally:
                model.load_waiting -= 1
                self.metrics.load_waiting.labels(model.name).set(model.load_waiting)
            if model.state == "failed":
                model.require_ready()

    def _may_retry(self, model: PooledModel) -> bool:
        """A failed load is tried again (the file may have been fixed, the worker may have died of a
        one-off), but not more often than every `load_retry_s`; a model refused by its kind never is."""
        if model.entry is None or model.failed_at is None or not self._servable(model):
            return False
        return time.monotonic() - model.failed_at >= self.settings.load_retry_s

    async def _start_load(self, model: PooledModel) -> None:
        assert model.entry is not None
        loader = self.loaders[model.entry.backend]
        try:
            resolved = locate(model.entry, self.settings.cache_dir)
        except ModelNotAvailable as exc:
            raise self._not_pulled(model.entry, str(exc)) from None
        assert self._room_lock is not None and self._room_changed is not None
        while model.load is None and model.state != "loaded":
            async with self._room_lock:  # one decision at a time: two loads never take the same room
                if model.load is not None or model.state == "loaded":
                    return
                if not model.estimate_bytes:  # read once, by the first request that needs it
                    model.estimate_bytes = await asyncio.to_thread(loader.estimate, resolved)
                self._check_fits(model)
                victims = self._victims(model)
                if victims is not None:
                    for victim in victims:
                        await self._unload(victim, "room")
                    model.state, model.detail = "loading", None
                    model.load = asyncio.create_task(self._load(model, loader, resolved))
                    return
                changed = self._room_changed
            model.load_waiting += 1
            self.metrics.load_waiting.labels(model.name).set(model.load_waiting)
            try:
                await changed.wait()  # until a model is idle or unloaded
            finally:
                model.load_waiting -= 1
                self.metrics.load_waiting.labels(model.name).set(model.load_waiting)

    def _held(self) -> list[PooledModel]:
        return [m for m in self.models.values() if m.state in ("loading", "loaded")]

    def _check_fits(self, model: PooledModel) -> None:
        """507 at once for a model that cannot be loaded even with every unpinned model unloaded."""
        pinned = [m for m in self._held() if m.pinned and m is not model]
        names = ", ".join(m.name for m in pinned)
        if len(pinned) >= self.settings.max_loaded_models:
            raise APIError(
                507,
                f"Model '{model.name}' cannot be loaded: this {self.spec.name} service loads at most "
                f"{self.settings.max_loaded_models} model(s) at once ({self.spec.env_prefix}MAX_LOADED_MODELS), "
                f"and that many are pinned ({names}). Unpin one (`nexa unload NAME`) or raise the limit.",
                param="model",
                code="model_too_large",
            )
        if not self.budget_bytes:
            return
        room = self.budget_bytes - sum(m.memory_bytes or m.estimate_bytes for m in pinned)
        if model.estimate_bytes <= room:
            return
        held = f", {_mib(self.budget_bytes - room)} of it held by pinned models ({names})" if pinned else ""
        raise APIError(
            507,
            f"Model '{model.name}' needs about {_mib(model.estimate_bytes)} and this {self.spec.name} service's memory "
            f"budget is {_mib(self.budget_bytes)}{held}: it can never be loaded here. Raise "
            f"{self.spec.env_prefix}MEMORY_BUDGET_MB{' or unpin models' if pinned else ''}"
            f"{' (or lower NEXA_TEXT_N_CTX)' if self.spec.name == 'text' else ''}.",
            param="model",
            code="model_too_large",
        )

    def _victims(self, model: PooledModel) -> list[PooledModel] | None:
        """The least recently used idle models to unload so that `model` fits (none if it fits now),
        or None when it cannot fit until a busy model is done."""
        held = [m for m in self._held() if m is not model]
        idle = sorted((m for m in held if not m.pinned and not m.busy and m.state == "loaded"),
                      key=lambda m: m.last_used)  # fmt: skip
        victims: list[PooledModel] = []
        while not self._fits(model, [m for m in held if m not in victims]):
            if not idle:
                return None
            victims.append(idle.pop(0))
        return victims

    def _fits(self, model: PooledModel, held: list[PooledModel]) -> bool:
        if len(held) + 1 > self.settings.max_loaded_models:
            return False
        used = sum(m.memory_bytes or m.estimate_bytes for m in held)
        return not self.budget_bytes or used + model.estimate_bytes <= self.budget_bytes

    async def _load(self, model: PooledModel, loader: BackendLoader, resolved: ResolvedModel) -> None:
        """Run the blocking load in a thread; a failure marks the model failed, with the reason, and is
        answered to every request waiting for it."""
        started = time.perf_counter()
        before = _rss()
        try:
            engine = await asyncio.to_thread(loader.load, resolved)
        except Exception as exc:  # the reason goes to the requests and /ready; the service stays up
            self._refuse(model, f"{type(exc).__name__}: {exc}")
            model.load = None
            self._room_change()
            return
        seconds = time.perf_counter() - started
        measured = engine.memory_bytes() if isinstance(engine, Measured) else max(0, _rss() - before)
        if measured > model.estimate_bytes * 1.25 + 64 * MIB:
            log.warning("model %s takes %s, more than the %s estimated from its files", model.name, _mib(measured),
                        _mib(model.estimate_bytes))  # fmt: skip
        model.memory_bytes = max(measured, model.estimate_bytes)
        model.engine = engine
        model.admission = AdmissionQueue(max(1, engine.slots), self.settings.queue_size, self.settings.retry_after_s)
        model.state, model.detail, model.failures_in_a_row = "loaded", None, 0
        model.loaded_at, model.last_used, model.ever_loaded = int(time.time()), time.monotonic(), True
        model.load = None
        self.metrics.loaded.labels(model.name).set(1)
        self.metrics.memory.labels(model.name).set(model.memory_bytes)
        self.metrics.load_seconds.labels(model.name).observe(seconds)
        log.info("model %s loaded in %.2f s (%s)", model.name, seconds, _mib(model.memory_bytes),
                 extra={"fields": {"model": model.name}})  # fmt: skip
        self._released(model)

    async def _unload(self, model: PooledModel, reason: str) -> None:
        engine, model.engine, model.admission = model.engine, None, None
        if model.state == "loaded":
            model.state = "available"
        model.memory_bytes, model.loaded_at, model.expires_at = 0, None, None
        # The next load starts from the configured keep-alive: a busy model's "unload when done" (0)
        # or one request's keep_alive must not follow the model into its next life.
        model.keep_alive_s = model.usual_keep_alive_s
        self.metrics.loaded.labels(model.name).set(0)
        self.metrics.memory.labels(model.name).set(0)
        self.metrics.evictions.labels(model.name, reason).inc()
        if engine is not None:
            log.info("unloading model %s (%s)", model.name, reason, extra={"fields": {"model": model.name}})
            await asyncio.to_thread(engine.close)

    def _released(self, model: PooledModel) -> None:
        """A request let go of the model: plan its unload once idle, and wake requests waiting for room."""
        if not model.busy and model.state == "loaded":
            if model.pinned or model.keep_alive_s is None:
                model.expires_at = None
            else:
                model.expires_at = time.time() + model.keep_alive_s
        self._room_change()

    def _room_change(self) -> None:
        """Wake every request waiting for room (each looks again whether it fits)."""
        if self._room_changed is not None:
            self._room_changed.set()
            self._room_changed = asyncio.Event()

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for model in self.models.values():
            if model.engine is not None:
                await self._unload(model, "shutdown")

    # --- the operator ------------------------------------------------------------------------

    async def load(self, name: str, pin: bool | None, keep_alive_s: float | Literal[False] | None) -> PooledModel:
        """Load a model now (waiting for room like a request), optionally pinning it."""
        model = self.get(name)
        if pin is not None:
            model.pinned = pin
        async with self.use(model, keep_alive_s):
            pass
        return model

    async def unload(self, name: str) -> PooledModel:
        """Unload a model now if idle, else as soon as its requests are done; unpins it."""
        model = self.get(name)
        model.pinned = False
        if model.busy:
            model.keep_alive_s, model.expires_at = 0.0, None
        elif model.state == "loaded":
            await self._unload(model, "operator")
            self._room_change()
        return model

    def loaded_models(self) -> list[LoadedModel]:
        return [m.loaded() for m in self._held()]

    # --- serving -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self, model: PooledModel) -> AsyncIterator[Lease]:
        """Wait for a free slot of the (loaded, held) model, 429 at once when its queue is full, and
        hold it. An unexpected failure inside counts against the engine's health; answers (APIError)
        and clients leaving say nothing about it."""
        model.require_ready()
        assert model.admission is not None
        async with model.admission.slot():
            lease = Lease(model, model.require_ready())  # it may have died while this request waited
            try:
                yield lease
            except APIError:
                raise
            except Exception as exc:
                log.exception("model %s failed a request", model.name, extra={"fields": {"model": model.name}})
                self.failed(model, lease.error or exc)
                if model.state == "failed":  # the failure showed the engine is dead: answer that, a 503
                    model.require_ready()
                # Answered here, in the API's error body, rather than left to the generic handler.
                raise APIError(
                    500,
                    f"Model '{model.name}' failed on this request; the server log has the details.",
                    code="engine_error",
                ) from exc
            else:
                if lease.error is not None:
                    self.failed(model, lease.error)
                else:
                    self.succeeded(model)

    def succeeded(self, model: PooledModel) -> None:
        model.failures_in_a_row = 0

    def failed(self, model: PooledModel, exc: BaseException) -> None:
        """An unexpected engine failure; after `fatal_failures` in a row the engine is taken as dead
        (at once when the engine itself says it is)."""
        model.failures_in_a_row += 1
        engine = model.engine
        if isinstance(engine, Watched) and (reason := engine.failure()):
            self.dead(model, reason)
        elif model.failures_in_a_row >= self.settings.fatal_failures:
            self.dead(model, f"it failed {model.failures_in_a_row} requests in a row ({type(exc).__name__}: {exc})")

    # --- a dead engine -----------------------------------------------------------------------

    def dead(self, model: PooledModel, reason: str) -> None:
        """The model's engine cannot serve any more. In a worker process: the model is unloaded (the
        worker is gone) and loads again on a later request. In-process: the process may be in any
        state, so /ready turns 503 with the reason, requests get 503, and the service exits
        (non-zero) so that its supervisor restarts it fresh."""
        assert model.entry is not None
        model.fail(reason)
        if self.loaders[model.entry.backend].isolated:
            log.error("the worker of model %s died: %s; it loads again on the next request", model.name, reason)
            self._spawn(self._unload(model, "died"))
            return
        if self.fatal_reason is not None:
            return
        self.fatal_reason = f"the engine of model '{model.name}' stopped working: {reason}"
        log.error("%s; the service will exit", self.fatal_reason)
        if self._fatal is not None:
            self._fatal.set()

    async def wait_fatal(self) -> str:
        assert self._fatal is not None, "start() first"
        await self._fatal.wait()
        assert self.fatal_reason is not None
        return self.fatal_reason

    async def _watch(self) -> None:
        """Dead engines, and idle models past their keep-alive."""
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            now = time.time()
            for model in list(self.models.values()):
                engine = model.engine
                if model.state == "loaded" and isinstance(engine, Watched) and (reason := engine.failure()):
                    self.dead(model, reason)
                elif (model.state == "loaded" and not model.busy and not model.pinned
                      and model.expires_at is not None and model.expires_at <= now):  # fmt: skip
                    await self._unload(model, "expired")
                    self._room_change()

    # --- reporting ---------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        if self.fatal_reason is not None:
            return Readiness(status="failed", model=self.default.name, detail=self.fatal_reason)
        if self.default.ever_loaded:
            return Readiness(status="ready", model=self.default.name)
        return self.default.readiness()

    def cards(self) -> list[ModelCard]:
        return [m.card() for m in self.servable()]

    def card(self, name: str) -> ModelCard:
        """One servable model's card, by name or alias (404 otherwise)."""
        for model in self.servable():
            if name == model.name or (model.entry is not None and name in model.entry.aliases):
                return model.card()
        raise self._not_found(name)

    @property
    def waiting(self) -> int:
        return sum(m.waiting + m.load_waiting for m in self.models.values())

    @property
    def running(self) -> int:
        return sum(m.running for m in self.models.values())


def _rss() -> int:
    return int(psutil.Process().memory_info().rss)


def _mib(n: int) -> str:
    return f"{n / MIB:.0f} MiB" if n < 1024 * MIB else f"{n / (1024 * MIB):.1f} GiB"
