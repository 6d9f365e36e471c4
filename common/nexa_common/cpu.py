"""How much CPU this process may use: physical cores, the CPU affinity mask, and a container's
cgroup CPU quota (cgroup v2 `cpu.max`, v1 `cpu.cfs_quota_us`), plus how idle the machine is.

A container limited to 1 CPU on a 16-core host sees 16 cores in /proc/cpuinfo; a thread pool
sized from that runs 16 threads in a 1-CPU budget, and the kernel throttles them all together.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path

import psutil

CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_SELF_CGROUP = Path("/proc/self/cgroup")


def cgroup_cpu_quota(root: Path = CGROUP_ROOT, self_cgroup: Path = PROC_SELF_CGROUP) -> float | None:
    """CPUs' worth of time the cgroup may use (1.5 for a quota of 150 ms per 100 ms), the smallest
    along the cgroup's path to the root; None when there is no quota (or no cgroup filesystem)."""
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        lines = []
    v2_path, v1_path = "/", None
    for line in lines:
        hierarchy, controllers, path = [*line.split(":", 2), "", ""][:3]
        if hierarchy == "0" and controllers == "":
            v2_path = path or "/"
        elif "cpu" in controllers.split(","):
            v1_path = path or "/"
    limits = [q for q in (_v2_quota(root, v2_path), _v1_quota(root, v1_path)) if q is not None]
    return min(limits) if limits else None


def _ancestors(base: Path, path: str) -> list[Path]:
    """`base/path` and each folder above it up to `base` (a quota anywhere above applies too). A
    container usually sees its own cgroup as `/`, so `base` itself is always included."""
    parts = [p for p in path.strip("/").split("/") if p]
    return [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]


def _v2_quota(root: Path, path: str) -> float | None:
    found: list[float] = []
    for folder in _ancestors(root, path):
        try:
            quota, period = (folder / "cpu.max").read_text().split()[:2]
        except (OSError, ValueError):
            continue
        if quota != "max" and float(period) > 0:
            found.append(float(quota) / float(period))
    return min(found) if found else None


def _v1_quota(root: Path, path: str | None) -> float | None:
    if path is None:
        return None
    found: list[float] = []
    for mount in (root / "cpu", root / "cpu,cpuacct", root / "cpuacct,cpu"):
        for folder in _ancestors(mount, path):
            try:
                quota = int((folder / "cpu.cfs_quota_us").read_text())
                period = int((folder / "cpu.cfs_period_us").read_text())
            except (OSError, ValueError):
                continue
            if quota > 0 and period > 0:
                found.append(quota / period)
    return min(found) if found else None


def usable_cores() -> int:
    """Threads worth running: physical cores (hyper-threads slow matrix work down), no more than
    the CPUs this process may run on, nor than its cgroup quota (rounded to the nearest CPU)."""
    cores = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    with contextlib.suppress(AttributeError, OSError):  # not every platform has affinity masks
        cores = min(cores, len(os.sched_getaffinity(0)))
    quota = cgroup_cpu_quota()
    if quota is not None:
        cores = min(cores, max(1, math.floor(quota + 0.5)))
    return max(1, cores)


class IdleCores:
    """How many CPUs of the machine sat idle since the last call (from /proc/stat; None where the
    file is missing). Cheap enough to call a few times a second."""

    def __init__(self, stat: Path = Path("/proc/stat")) -> None:
        self._stat = stat
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._last = self._read()

    def _read(self) -> tuple[float, float] | None:
        try:
            with self._stat.open() as f:
                fields = f.readline().split()
        except OSError:
            return None
        if not fields or fields[0] != "cpu" or len(fields) < 5:
            return None
        idle = int(fields[4]) + (int(fields[5]) if len(fields) > 5 else 0)  # idle + iowait
        return time.monotonic(), idle / self._tick

    def __call__(self) -> float | None:
        now = self._read()
        last, self._last = self._last, now
        if now is None or last is None or now[0] <= last[0]:
            return None
        return max(0.0, (now[1] - last[1]) / (now[0] - last[0]))
