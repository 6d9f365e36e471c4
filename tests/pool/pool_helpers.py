"""What the pool tests share (a module of its own: `conftest` is a name every test folder has)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

TIMEOUT = httpx.Timeout(300.0, connect=5.0)


def pull(name: str, cache: Path) -> None:
    """`nexa pull NAME` into `cache`, as a user runs it."""
    subprocess.run([sys.executable, "-m", "nexa_cli", "pull", name], check=True, env={**os.environ, "NEXA_CACHE": str(cache)},
                   capture_output=True, timeout=600)  # fmt: skip


def metric(page: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include `labels`, in a Prometheus text page."""
    total = 0.0
    for line in page.splitlines():
        match = re.match(rf"^{re.escape(name)}(\{{[^}}]*\}})? (\S+)$", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            total += float(match.group(2))
    return total
