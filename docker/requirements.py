"""Print the third-party requirements of components, read from their pyproject.toml files.

Run in the image builder before the components' code is copied in, so that the dependency layer
is rebuilt only when a pyproject.toml (or constraints.txt) changes, not on every code change.
The local nexa-* packages are left out: they are installed from the copied sources afterwards.

usage: python3 requirements.py FOLDER[EXTRA,...] ...   e.g. common services/text
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path


def requirements(folder: str) -> list[str]:
    path, _, extras = folder.partition("[")
    project = tomllib.loads((Path(path) / "pyproject.toml").read_text())["project"]
    found = list(project.get("dependencies", []))
    for extra in filter(None, extras.rstrip("]").split(",")):
        found += project.get("optional-dependencies", {})[extra]
    return [r for r in found if not re.match(r"nexa[-_]", r, re.IGNORECASE)]


if __name__ == "__main__":
    print("\n".join(dict.fromkeys(r for folder in sys.argv[1:] for r in requirements(folder))))
