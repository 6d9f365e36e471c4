"""The real text service with a fault that a test switches on: once the file named by
NEXA_TEST_FAULT_FILE exists, NEXA_TEST_FAULT=kill-scheduler makes the batched engine's scheduler
thread exit at its next step (as a crash in it would), and NEXA_TEST_FAULT=raise makes every
generation of the one-sequence engine raise. Run as `python faulty_text.py` (test use only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from nexa_common.serve import main
from nexa_text import batched_engine, llama_engine
from nexa_text.engine import Sequence, Token
from nexa_text.settings import Settings

TRIGGER = Path(os.environ["NEXA_TEST_FAULT_FILE"])
MODE = os.environ["NEXA_TEST_FAULT"]


def _install() -> None:
    if MODE == "kill-scheduler":
        step = batched_engine.BatchedEngine._step

        def dying_step(self: batched_engine.BatchedEngine) -> None:
            if TRIGGER.exists():
                raise SystemExit("the scheduler thread ends (injected by the test)")  # ends only this thread
            step(self)

        batched_engine.BatchedEngine._step = dying_step  # type: ignore[method-assign]
    elif MODE == "raise":
        generate = llama_engine.LlamaEngine.generate

        def failing(self: llama_engine.LlamaEngine, sequence: Sequence) -> Iterator[Token]:
            if TRIGGER.exists():
                raise RuntimeError("the engine broke (injected by the test)")
            yield from generate(self, sequence)

        llama_engine.LlamaEngine.generate = failing  # type: ignore[method-assign]
    else:
        raise SystemExit(f"unknown NEXA_TEST_FAULT {MODE!r}")


if __name__ == "__main__":
    _install()
    main("nexa_text.app:create_app", Settings, [])
