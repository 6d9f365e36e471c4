"""The thread governor's decisions, fed step times (the governor is pure logic over the times it
is told; the engine times real llama_decode calls), and the CPU budget read from cgroup files."""

from __future__ import annotations

from pathlib import Path

from nexa_common.cpu import cgroup_cpu_quota
from nexa_text.engines import auto_slots
from nexa_text.threads import PROBE_DOWN_S, PROBE_UP_MAX_S, ThreadGovernor

QUIET = 0.008  # seconds a 1-token step takes on full threads, quiet
ONE_THREAD = 0.011  # the same step on one thread


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _steps(governor: ThreadGovernor, clock: Clock, timing: dict[int, float], count: int, n_tokens: int = 1) -> None:
    """Run `count` steps whose time depends on the thread count the governor picks."""
    for _ in range(count):
        threads = governor.threads_for(n_tokens)
        seconds = timing[threads]
        clock.now += seconds
        governor.observe(n_tokens, seconds)


def test_a_busy_machine_costs_a_thread_and_a_free_one_gives_it_back() -> None:
    clock, idle = Clock(), [0.0]
    governor = ThreadGovernor(2, idle_cores=lambda: idle[0], clock=clock)
    _steps(governor, clock, {2: QUIET, 1: ONE_THREAD}, 50)
    assert governor.threads == 2

    # Another process takes a core: 2-thread steps stall at llama.cpp's barriers, 1-thread ones do not.
    busy = {2: QUIET * 60, 1: ONE_THREAD * 1.1}
    _steps(governor, clock, busy, 3)
    assert governor.threads == 1
    _steps(governor, clock, busy, 2000)  # ~24 s: no idle CPU, so no trials with 2 threads
    assert governor.threads == 1

    idle[0] = 0.5  # the other process ended; our own event loop, router and clients use the rest
    start = clock.now
    while governor.threads == 1 and clock.now - start < 30:
        _steps(governor, clock, {2: QUIET, 1: ONE_THREAD}, 1)
    assert governor.threads == 2
    assert clock.now - start <= PROBE_UP_MAX_S + 1


def test_a_trial_that_does_not_pay_keeps_the_fewer_threads() -> None:
    clock = Clock()
    governor = ThreadGovernor(2, idle_cores=lambda: 1.0, clock=clock)  # /proc/stat says idle, yet
    _steps(governor, clock, {2: QUIET, 1: ONE_THREAD}, 50)
    _steps(governor, clock, {2: QUIET * 60, 1: ONE_THREAD}, 3)
    assert governor.threads == 1
    # Trials with 2 threads keep failing (a quota throttles them): the governor stays at 1 and
    # tries less and less often.
    trials = 0
    for _ in range(3000):
        threads = governor.threads_for(1)
        trials += threads == 2
        seconds = QUIET * 60 if threads == 2 else ONE_THREAD
        clock.now += seconds
        governor.observe(1, seconds)
    assert governor.threads == 1
    assert 0 < trials <= clock.now / PROBE_UP_MAX_S + 4


def test_a_process_started_on_a_busy_machine_finds_the_better_count() -> None:
    clock = Clock()
    governor = ThreadGovernor(2, idle_cores=lambda: 0.0, clock=clock)
    # Its first baseline was never quiet: 2 threads were slow from the start.
    busy = {2: QUIET * 60, 1: ONE_THREAD}
    while clock.now < PROBE_DOWN_S + 1:
        _steps(governor, clock, busy, 1)
    assert governor.threads == 1


def test_prompt_batches_are_compared_per_token() -> None:
    clock = Clock()
    governor = ThreadGovernor(2, idle_cores=lambda: 0.0, clock=clock)
    for n_tokens in (100, 128, 80, 120, 90, 110, 127, 70) * 4:  # one bucket, different sizes
        governor.threads_for(n_tokens)
        governor.observe(n_tokens, n_tokens * 0.0005)
    assert governor.threads == 2


def test_a_fixed_thread_count_never_changes() -> None:
    clock = Clock()
    governor = ThreadGovernor(2, adaptive=False, clock=clock)
    _steps(governor, clock, {2: QUIET * 60, 1: ONE_THREAD}, 100)
    assert governor.threads == 2 and governor.changes == 0


def test_cgroup_v2_quota(tmp_path: Path) -> None:
    (tmp_path / "proc").write_text("0::/kubepods/pod1/ctr\n")
    container = tmp_path / "fs" / "kubepods" / "pod1" / "ctr"
    container.mkdir(parents=True)
    (container / "cpu.max").write_text("150000 100000\n")
    (container.parent / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == 1.5
    (container.parent / "cpu.max").write_text("100000 100000\n")  # a tighter limit further up wins
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == 1.0


def test_cgroup_v1_quota_and_none(tmp_path: Path) -> None:
    (tmp_path / "proc").write_text("4:memory:/x\n3:cpu,cpuacct:/\n")
    mount = tmp_path / "fs" / "cpu,cpuacct"
    mount.mkdir(parents=True)
    (mount / "cpu.cfs_period_us").write_text("100000\n")
    (mount / "cpu.cfs_quota_us").write_text("-1\n")
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") is None
    (mount / "cpu.cfs_quota_us").write_text("50000\n")
    assert cgroup_cpu_quota(tmp_path / "fs", tmp_path / "proc") == 0.5
    assert cgroup_cpu_quota(tmp_path / "missing", tmp_path / "missing-proc") is None


def test_slots_follow_the_machine_and_the_cache() -> None:
    assert auto_slots(2, 2048, on_gpu=False) == 8
    assert auto_slots(1, 2048, on_gpu=False) == 4
    assert auto_slots(16, 65536, on_gpu=False) == 16
    assert auto_slots(2, 512, on_gpu=False) == 2  # a small cache: fewer, fuller slots
    assert auto_slots(2, 8192, on_gpu=True) == 16
