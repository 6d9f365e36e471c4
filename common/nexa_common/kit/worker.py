"""A model in a worker process of its service, so that unloading it gives all of its memory back.

Some libraries keep memory in the process after a model is freed (CTranslate2's and torch's
allocators, glibc arenas; measured in docs/architecture.md): the only sure way to return it is to
end the process. `WorkerEngine` starts `python -m nexa_common.kit.worker`, which builds the engine
there (`factory(*args)`); the service calls its methods through a socket, each call in a thread of
the worker, and a cancel flag set in the service is forwarded so the work stops as it would
in-process. Closing the engine ends the process. A worker that dies fails its calls and reports
why (`failure()`), and the pool unloads the model instead of taking the whole service down.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import queue
import socket
import subprocess
import sys
import threading
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import psutil

log = logging.getLogger("nexa.worker")

_POLL_S = 0.1
"""How often a waiting call looks at its cancel flag and at the worker's health."""
_STOP_S = 10.0
"""How long a worker may take to exit once asked, before it is killed."""


class WorkerFailed(RuntimeError):
    """The worker process died or could not start its engine."""


@dataclass(frozen=True)
class _Call:
    call_id: int
    method: str
    args: tuple[Any, ...]
    cancellable: bool


def _rebuild(type_path: str, message: str) -> BaseException:
    """The worker's exception as the service would have seen it in-process, where its type is importable."""
    module_name, _, name = type_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(message)  # type: ignore[no-any-return]
    except Exception:  # an exception type that cannot be rebuilt from a message
        pass
    return RuntimeError(f"{name}: {message}")


class WorkerEngine:
    """The service-side handle of an engine running in a worker process.

    `attributes` names what the engine exposes as plain values (read once, after loading); `calls`
    maps each method to whether its last argument is a cancel flag (`threading.Event`).
    """

    def __init__(
        self,
        factory: str,
        args: tuple[Any, ...],
        *,
        attributes: tuple[str, ...],
        calls: dict[str, bool],
        name: str,
        startup_timeout_s: float = 600.0,
    ) -> None:
        self.name = name
        self._calls = calls
        self._ids = itertools.count()
        self._pending: dict[int, queue.SimpleQueue[tuple[str, Any]]] = {}
        self._lock = threading.Lock()
        self._failure: str | None = None
        ours, theirs = socket.socketpair()
        self._process = subprocess.Popen(
            [sys.executable, "-m", "nexa_common.kit.worker", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            # The worker logs to the service's own stderr, so its messages land in the service's log.
        )
        theirs.close()
        self._conn = Connection(ours.detach())
        self._conn.send((factory, args, attributes))
        if not self._conn.poll(startup_timeout_s):
            self._kill()
            raise WorkerFailed(f"the worker for '{name}' did not load its model within {startup_timeout_s:.0f} s")
        try:
            kind, payload = self._conn.recv()
        except (EOFError, OSError):
            code = self._process.wait()
            raise WorkerFailed(f"the worker for '{name}' exited with code {code} while loading") from None
        if kind != "ready":
            self._kill()
            raise _rebuild(*payload)
        for attribute, value in payload.items():
            setattr(self, attribute, value)
        self._reader = threading.Thread(target=self._read, name=f"nexa-worker-{name}", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    def memory_bytes(self) -> int:
        """The worker's resident memory: the model's whole cost, since the worker holds nothing else."""
        try:
            return int(psutil.Process(self._process.pid).memory_info().rss)
        except psutil.Error:
            return 0

    def call(self, method: str, *args: Any) -> Any:
        """Run `method(*args)` in the worker and wait for it; a cancel flag (the last argument of a
        cancellable method) set meanwhile is passed on to the worker's own flag."""
        cancellable = self._calls[method]
        cancel: threading.Event | None = args[-1] if cancellable else None
        wire_args = args[:-1] if cancellable else args
        call_id = next(self._ids)
        answers: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        with self._lock:
            if self._failure is not None:
                raise WorkerFailed(self._failure)
            self._pending[call_id] = answers
            self._conn.send(("call", _Call(call_id, method, wire_args, cancellable)))
        forwarded = False
        try:
            while True:
                try:
                    kind, payload = answers.get(timeout=_POLL_S)
                except queue.Empty:
                    if cancel is not None and not forwarded and cancel.is_set():
                        forwarded = True
                        with self._lock:
                            if self._failure is None:
                                self._conn.send(("cancel", call_id))
                    continue
                if kind == "result":
                    return payload
                if kind == "failed":
                    raise WorkerFailed(payload)
                raise _rebuild(*payload)
        finally:
            with self._lock:
                self._pending.pop(call_id, None)

    def _read(self) -> None:
        """Route the worker's answers to the waiting calls; when it dies, fail them all."""
        try:
            while True:
                call_id, kind, payload = self._conn.recv()
                with self._lock:
                    waiting = self._pending.get(call_id)
                if waiting is not None:
                    waiting.put((kind, payload))
        except (EOFError, OSError):
            pass
        code = self._process.wait()
        with self._lock:
            if self._failure is None:
                self._failure = f"the worker process of '{self.name}' exited with code {code}"
            for waiting in self._pending.values():
                waiting.put(("failed", self._failure))

    def failure(self) -> str | None:
        """Why the worker cannot serve any more, or None."""
        with self._lock:
            return self._failure

    def close(self) -> None:
        """End the worker (its memory goes with it)."""
        with self._lock:
            if self._failure is None:
                self._failure = "the model was unloaded"
                with contextlib.suppress(OSError):  # already gone
                    self._conn.send(("close", None))
        try:
            self._process.wait(_STOP_S)
        except subprocess.TimeoutExpired:
            self._kill()
        self._conn.close()

    def _kill(self) -> None:
        self._process.kill()
        self._process.wait()


# --- the worker process ----------------------------------------------------------------------


def _load(factory: str, args: tuple[Any, ...]) -> Any:
    module_name, _, name = factory.partition(":")
    return getattr(importlib.import_module(module_name), name)(*args)


def _error(exc: BaseException) -> tuple[str, str]:
    return f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc)


def serve(conn: Connection) -> None:
    """Build the engine, then run calls until told to close (or until the service goes away).

    The engine is built on a thread of the pool that runs its calls, not on this one: torch's
    OpenMP threads serve the thread that started them, and a call from another thread paid ~65 ms
    more for a 4-step 64x64 image (measured: 0.10 s against 0.03 s in the thread that loaded)."""
    factory, args, attributes = conn.recv()
    calls = ThreadPoolExecutor(1, thread_name_prefix="nexa-worker-call")
    try:
        engine = calls.submit(_load, factory, args).result()
    except Exception as exc:
        log.error("the worker could not load its model:\n%s", traceback.format_exc())
        conn.send(("error", _error(exc)))
        calls.shutdown()
        return
    conn.send(("ready", {name: getattr(engine, name) for name in attributes}))
    sending = threading.Lock()
    cancels: dict[int, threading.Event] = {}

    def run(call: _Call) -> None:
        cancel = cancels[call.call_id]
        try:
            result = getattr(engine, call.method)(*call.args, *((cancel,) if call.cancellable else ()))
            answer: tuple[int, str, Any] = (call.call_id, "result", result)
        except Exception as exc:
            answer = (call.call_id, "error", _error(exc))
        finally:
            cancels.pop(call.call_id, None)
        with sending:
            conn.send(answer)

    slots = max(1, int(getattr(engine, "slots", 1)))
    # One slot: every call on the loading thread. More: that thread and slots - 1 others.
    more = ThreadPoolExecutor(slots - 1, thread_name_prefix="nexa-worker-call") if slots > 1 else None
    on_loader: Any = None  # the call running on the loading thread, if any
    try:
        while True:
            try:
                kind, payload = conn.recv()
            except (EOFError, OSError):
                break  # the service is gone: nobody to serve
            if kind == "close":
                break
            if kind == "cancel":
                if (event := cancels.get(payload)) is not None:
                    event.set()
                continue
            cancels[payload.call_id] = threading.Event()
            if more is None or on_loader is None or on_loader.done():
                on_loader = calls.submit(run, payload)
            else:
                more.submit(run, payload)
        for event in list(cancels.values()):
            event.set()
    finally:
        calls.shutdown()
        if more is not None:
            more.shutdown()
    close = getattr(engine, "close", None)
    if callable(close):
        close()


def main(argv: list[str]) -> None:
    from ..logs import configure_logging

    configure_logging(os.environ.get("NEXA_WORKER_LOG_LEVEL", "info"), json_lines=False)
    serve(Connection(int(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
