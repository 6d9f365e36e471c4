"""The models a service hosts, as one object the service owns: each model's status (loading, ready,
failed, failed-after-ready included), its engine and admission queue, background loading, and the
watch that notices a dead engine.

A service gives the pool one loader per backend (the text service: GGUF and ONNX); the pool
resolves the configured model through the catalogue, loads it in a worker thread after the socket
is bound (so `/health` answers at once and `/ready` says "loading"), and answers `/ready` and
`/v1/models` from what it holds. A route asks the pool for its model and runs its work in the
model's slot; the slot reports unexpected failures back, so an engine that fails every request
is found dead like one whose scheduler thread died.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from ..admission import AdmissionQueue
from ..catalogue import Backend, CatalogueEntry, ModelError, ResolvedModel, find, locate
from ..errors import APIError
from ..modalities import ModalitySpec
from ..schemas.common import ModelCard, Readiness
from ..settings import ServiceSettings

log = logging.getLogger("nexa.models")

ModelState = Literal["loading", "ready", "failed"]
WATCH_INTERVAL_S = 0.5
"""How often loaded engines are asked whether they still work."""


class Engine(Protocol):
    """What the pool needs of a loaded model: how many requests it runs at once, and a way to free it."""

    slots: int

    def close(self) -> None: ...


@runtime_checkable
class Watched(Protocol):
    """An engine that can tell it has stopped working (a scheduler thread that died)."""

    def failure(self) -> str | None:
        """Why the engine cannot serve any more, or None while it works."""
        ...


Loader = Callable[[ResolvedModel], Engine]
"""Builds the engine of a resolved model; blocking, run in a worker thread."""


@dataclass
class Lease:
    """A request's hold on a slot of a model (see `ModelPool.slot`)."""

    model: PooledModel
    engine: Engine
    error: BaseException | None = None
    """An engine failure that did not propagate (a stream answers it as an error event): set it, so it
    counts against the engine's health when the slot is given back."""


class PooledModel:
    """One model of the pool: its status, and once loaded its engine and admission queue."""

    def __init__(self, name: str, entry: CatalogueEntry | None, settings: ServiceSettings) -> None:
        self.name = name
        self.entry = entry
        self.settings = settings
        self.state: ModelState = "loading"
        self.detail: str | None = None
        self.engine: Engine | None = None
        self.admission: AdmissionQueue | None = None
        self.loaded_at = int(time.time())
        self.failures_in_a_row = 0

    def fail(self, reason: str) -> None:
        self.state, self.detail = "failed", reason

    def readiness(self) -> Readiness:
        return Readiness(status=self.state, model=self.name, detail=self.detail)

    def card(self) -> ModelCard:
        assert self.entry is not None
        return ModelCard(
            id=self.name, created=self.loaded_at, modality=self.entry.modality, backend=self.entry.backend.value
        )

    def require_ready(self) -> Engine:
        """The engine, or a 503 saying why there is none (still loading, failed, stopped working)."""
        if self.state == "ready" and self.engine is not None:
            return self.engine
        if self.state == "loading":
            raise APIError(
                503,
                f"Model '{self.name}' is still loading; retry shortly.",
                code="model_loading",
                headers={"Retry-After": str(self.settings.retry_after_s)},
            )
        if self.engine is not None:  # it was serving, then its engine died
            raise APIError(503, f"Model '{self.name}' stopped working: {self.detail}", code="model_failed")
        raise APIError(503, f"Model '{self.name}' failed to load: {self.detail}", code="model_failed")

    @property
    def waiting(self) -> int:
        return self.admission.waiting if self.admission else 0

    @property
    def running(self) -> int:
        return self.admission.running if self.admission else 0


class ModelPool:
    """The models a service serves; the service creates one and keeps it on its state."""

    def __init__(self, spec: ModalitySpec, settings: ServiceSettings, loaders: Mapping[Backend, Loader]) -> None:
        self.spec = spec
        self.settings = settings
        self.loaders = dict(loaders)
        self.fatal_reason: str | None = None
        self._fatal: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.default = self._configure(settings.model or spec.default_model)
        self.models: dict[str, PooledModel] = {self.default.name: self.default}

    # --- resolving ---------------------------------------------------------------------------

    def _configure(self, name: str) -> PooledModel:
        """A model for a configured name; one that cannot be served is failed, with the reason."""
        try:
            entry: CatalogueEntry | None = find(name)
        except ModelError as exc:
            model = PooledModel(Path(name).name or name, None, self.settings)
            self._refuse(model, str(exc))
            return model
        assert entry is not None
        model = PooledModel(entry.name, entry, self.settings)
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

    def get(self, name: str | None = None) -> PooledModel:
        """The model a request names. Each service serves the one model it was started with, so a
        request's `model` names it at most (OpenAI clients send one)."""
        return self.default

    # --- loading -----------------------------------------------------------------------------

    async def start(self) -> None:
        """Resolve the configured model now (no network: fast) and load it in the background."""
        self._fatal = asyncio.Event()
        model = self.default
        if model.state != "failed":
            assert model.entry is not None
            try:
                resolved = locate(model.entry, self.settings.cache_dir)
            except ModelError as exc:
                self._refuse(model, str(exc))
            else:
                self._tasks.append(asyncio.create_task(self._load(model, resolved)))
        self._tasks.append(asyncio.create_task(self._watch()))

    async def _load(self, model: PooledModel, resolved: ResolvedModel) -> None:
        """Run the blocking load in a thread; a failure marks the model failed, with the reason, instead
        of crashing the service (a crash would only restart into the same failure)."""
        started = time.perf_counter()
        loader = self.loaders[resolved.entry.backend]
        try:
            engine = await asyncio.to_thread(loader, resolved)
        except Exception as exc:  # the reason goes to /ready; the service stays up to report it
            self._refuse(model, f"{type(exc).__name__}: {exc}")
            return
        model.engine = engine
        model.admission = AdmissionQueue(max(1, engine.slots), self.settings.queue_size, self.settings.retry_after_s)
        model.state, model.detail, model.loaded_at = "ready", None, int(time.time())
        log.info(
            "model %s loaded in %.2f s",
            model.name,
            time.perf_counter() - started,
            extra={"fields": {"model": model.name}},
        )

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for model in self.models.values():
            if model.engine is not None:
                engine, model.engine = model.engine, None
                await asyncio.to_thread(engine.close)

    # --- serving -----------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def slot(self, model: PooledModel) -> AsyncIterator[Lease]:
        """Wait for a free slot of the model (429 at once when its queue is full) and hold it. An
        unexpected failure inside counts against the engine's health; answers (APIError) and clients
        leaving say nothing about it."""
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
            self.fatal(model, reason)
        elif model.failures_in_a_row >= self.settings.fatal_failures:
            self.fatal(model, f"it failed {model.failures_in_a_row} requests in a row ({type(exc).__name__}: {exc})")

    # --- a dead engine -----------------------------------------------------------------------

    def fatal(self, model: PooledModel, reason: str) -> None:
        """The engine cannot serve any more: /ready turns 503 with the reason, requests get 503, and
        the service exits (non-zero) so its supervisor restarts it with a fresh process."""
        if self.fatal_reason is not None:
            return
        self.fatal_reason = f"the engine of model '{model.name}' stopped working: {reason}"
        model.fail(reason)
        log.error("%s; the service will exit", self.fatal_reason)
        if self._fatal is not None:
            self._fatal.set()

    async def wait_fatal(self) -> str:
        assert self._fatal is not None, "start() first"
        await self._fatal.wait()
        assert self.fatal_reason is not None
        return self.fatal_reason

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_INTERVAL_S)
            for model in list(self.models.values()):
                engine = model.engine
                if model.state == "ready" and isinstance(engine, Watched) and (reason := engine.failure()):
                    self.fatal(model, reason)

    # --- reporting ---------------------------------------------------------------------------

    def readiness(self) -> Readiness:
        if self.fatal_reason is not None:
            return Readiness(status="failed", model=self.default.name, detail=self.fatal_reason)
        return self.default.readiness()

    def cards(self) -> list[ModelCard]:
        return [m.card() for m in self.models.values() if m.state == "ready"]

    @property
    def waiting(self) -> int:
        return sum(m.waiting for m in self.models.values())

    @property
    def running(self) -> int:
        return sum(m.running for m in self.models.values())
