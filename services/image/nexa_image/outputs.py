"""The output folder: generated PNGs saved under names only this service makes, served back, pruned.

Names are `<32 hex digits>.png` (a random UUID), so a name from a request can be checked against
that pattern alone: nothing else in, or outside, the folder can ever be addressed.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import tempfile
import time
import uuid
from pathlib import Path

log = logging.getLogger("nexa.image.outputs")

NAME_PATTERN = re.compile(r"[0-9a-f]{32}\.png")
_OUT_OF_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


class OutOfSpace(Exception):
    """The disk (or quota, or file-size limit) is full: the image could not be saved."""


class OutputStore:
    def __init__(self, folder: Path, max_kept: int, max_age_s: float) -> None:
        self.folder = folder
        self.max_kept = max_kept
        self.max_age_s = max_age_s
        # Private: outputs may be personal images; other local users have no business reading them.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)

    def save(self, png: bytes) -> str:
        """Write `png` under a new name and return the name; raises OutOfSpace when the disk is full."""
        name = f"{uuid.uuid4().hex}.png"
        # Written aside and renamed, so a reader never gets a half-written file.
        fd, tmp = tempfile.mkstemp(prefix=".partial-", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(png)
            os.replace(tmp, self.folder / name)
        except OSError as exc:
            Path(tmp).unlink(missing_ok=True)
            if exc.errno in _OUT_OF_SPACE:
                raise OutOfSpace(str(exc)) from exc
            raise
        self.prune()
        return name

    def read(self, name: str) -> bytes | None:
        """The saved PNG called `name`, or None when the name is not one this store makes or is gone.

        Read whole (PNGs are small) so pruning between the check and the answer cannot break a response.
        """
        if not NAME_PATTERN.fullmatch(name):
            return None
        path = self.folder / name
        if path.is_symlink():
            return None
        try:
            return path.read_bytes()
        except OSError:
            return None

    def prune(self) -> int:
        """Delete files older than max_age_s, then the oldest beyond max_kept; returns how many went."""
        now = time.time()
        files: list[tuple[float, Path]] = []
        try:
            entries = list(os.scandir(self.folder))
        except OSError:
            return 0
        for entry in entries:
            if entry.name.startswith(".partial-"):
                self._drop_stale_partial(entry, now)
            if not NAME_PATTERN.fullmatch(entry.name):
                continue
            try:
                files.append((entry.stat(follow_symlinks=False).st_mtime, Path(entry.path)))
            except FileNotFoundError:  # pruned by a concurrent request
                continue
        files.sort()
        expired = [p for mtime, p in files if now - mtime > self.max_age_s]
        kept = [p for mtime, p in files if now - mtime <= self.max_age_s]
        doomed = expired + kept[: max(0, len(kept) - self.max_kept)]
        for path in doomed:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not prune an output file: %s", exc.strerror)
        return len(doomed)

    def _drop_stale_partial(self, entry: os.DirEntry[str], now: float) -> None:
        # Left by a process killed mid-write; an hour is far beyond any write in progress.
        try:
            if now - entry.stat(follow_symlinks=False).st_mtime > 3600:
                Path(entry.path).unlink(missing_ok=True)
        except OSError:
            pass
