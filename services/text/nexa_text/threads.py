"""How many threads each llama_decode step gets: all of them while they get their cores, fewer
while another process takes one.

llama.cpp's threads meet at a barrier after every operation of the graph (hundreds per token).
When one of them loses its core to another process for a scheduler time slice, the others spin at
the barrier until it comes back, so a 2-thread decode on a 2-core machine with one other CPU-bound
process runs ~100x slower, while a 1-thread decode barely notices. The governor times every step
against that step size's quiet baseline: a run of steps well above it means the threads are not
getting their cores, and the next steps run with one thread fewer. While below full strength it
tries one step with a thread more now and then (only when the machine shows an idle CPU), and
keeps it when that step is faster; the same kind of trial with a thread fewer catches a process
that started on a busy machine, whose baseline was never quiet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

SLOW = 2.0
"""A step this many times its quiet baseline counts as slow."""
STREAK = 3
"""Consecutive slow steps before the governor takes a thread away."""
WARM = 5
"""Samples of a step size before its baseline is trusted."""
BETTER = 0.9
"""A trial step with another thread count must beat the current baseline by 10% to be kept."""
PROBE_UP_FIRST_S = 0.5
PROBE_UP_MAX_S = 4.0
"""Trials with a thread more: first after 0.5 s, then backing off to every 4 s while they fail."""
PROBE_DOWN_S = 20.0
"""Trial with a thread fewer: this often while at a level whose baseline may never have been quiet."""
IDLE_FOR_PROBE = 0.3
"""CPUs the machine must have left idle before a trial with a thread more is worth it: a CPU-bound
neighbour leaves ~0 (a trial would cost a slow step), while our own event loop, router and clients
leave part of a core idle and must not keep the engine at fewer threads."""


def step_key(n_tokens: int) -> tuple[int, int]:
    """Steps are compared with steps of the same size: up to 16 tokens (decoding, a few sequences)
    a step costs about the same whatever its size, so each size has its own baseline; larger
    (prompt) batches cost per token, so they share power-of-two buckets, timed per token."""
    if n_tokens <= 16:
        return n_tokens, 1
    return 16 * 2 ** math.ceil(math.log2(n_tokens / 16)), n_tokens


@dataclass
class _Baseline:
    seconds: float
    samples: int = 1


class ThreadGovernor:
    def __init__(
        self,
        full: int,
        *,
        adaptive: bool = True,
        idle_cores: Callable[[], float | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.full = max(1, full)
        self.threads = self.full
        self.adaptive = adaptive and self.full > 1
        self._idle = idle_cores
        self._clock = clock
        self._base: dict[tuple[int, int], _Baseline] = {}
        self._slow = 0
        self._trial: int | None = None
        self._up_interval = PROBE_UP_FIRST_S
        now = clock()
        self._next_up = now + PROBE_UP_FIRST_S
        self._next_down = now + PROBE_DOWN_S
        self.changes = 0
        """Times the thread count changed (a metric)."""

    def threads_for(self, n_tokens: int) -> int:
        """Threads for the next step of `n_tokens` tokens."""
        self._trial = None
        if not self.adaptive:
            return self.threads
        bucket, _ = step_key(n_tokens)
        if self._warm(self.threads, bucket):
            now = self._clock()
            if self.threads < self.full and now >= self._next_up:
                idle = self._idle() if self._idle is not None else None
                if idle is None or idle >= IDLE_FOR_PROBE:
                    self._trial = self.threads + 1
                else:
                    self._next_up = now + self._up_interval
            elif self.threads > 1 and now >= self._next_down:
                self._trial = self.threads - 1
                self._next_down = now + PROBE_DOWN_S
        return self._trial or self.threads

    def observe(self, n_tokens: int, seconds: float) -> None:
        """How long the step chosen by the last `threads_for` took."""
        if not self.adaptive:
            return
        bucket, per = step_key(n_tokens)
        cost = seconds / per
        if self._trial is not None:
            self._judge_trial(bucket, cost)
            return
        base = self._base.get((self.threads, bucket))
        if base is None:
            self._base[(self.threads, bucket)] = _Baseline(cost)
            return
        slow = base.samples >= WARM and cost > SLOW * base.seconds
        if slow:
            self._slow += 1
            if self._slow >= STREAK and self.threads > 1:
                self._set(self.threads - 1)
            return
        self._slow = 0
        # The quiet baseline falls at once to a faster step and rises slowly (a longer context makes
        # steps slower for real); slow steps never feed it.
        rate = 0.3 if cost < base.seconds else 0.02
        base.seconds += rate * (cost - base.seconds)
        base.samples += 1

    def _judge_trial(self, bucket: int, cost: float) -> None:
        trial, self._trial = self._trial, None
        assert trial is not None
        current = self._base[(self.threads, bucket)].seconds
        seen = self._base.setdefault((trial, bucket), _Baseline(cost))
        seen.seconds = min(seen.seconds, cost)
        if cost < BETTER * current:
            self._set(trial)
            return
        if trial > self.threads:  # the cores are still taken: try again later, less often
            self._up_interval = min(self._up_interval * 2, PROBE_UP_MAX_S)
            self._next_up = self._clock() + self._up_interval

    def _set(self, threads: int) -> None:
        now = self._clock()
        self.threads = threads
        self.changes += 1
        self._slow = 0
        self._up_interval = PROBE_UP_FIRST_S
        self._next_up = now + PROBE_UP_FIRST_S
        self._next_down = now + PROBE_DOWN_S

    def _warm(self, threads: int, bucket: int) -> bool:
        base = self._base.get((threads, bucket))
        return base is not None and base.samples >= WARM
