"""Building a model folder so that a failed or interrupted build never leaves something that looks
like a model: it is written beside its destination and renamed into place at the end."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged_folder(dest: Path) -> Iterator[Path]:
    """A fresh folder beside `dest` to build in; on success it replaces `dest`, on failure it goes."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        yield staging
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
