"""The peer servers the text benchmark compares against, built once and cached outside git.

Both come from the same llama-cpp-python release as our text service (the pinned one), so all
three run the same llama.cpp: llama-server compiled from the sources that release vendors, and
llama-cpp-python's own OpenAI server (its `[server]` extra) in a venv of its own. The cache,
`$NEXA_BENCH_CACHE` or ~/.cache/nexa-bench, is keyed on the version: a new pin builds anew.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from importlib.metadata import version
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_REQUIREMENTS = HERE / "peers-requirements.txt"


def cache_root() -> Path:
    env = os.environ.get("NEXA_BENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "nexa-bench"


def llama_cpp_version() -> str:
    """The llama-cpp-python release the text service runs (pinned in constraints.txt)."""
    return version("llama_cpp_python")


def _run(argv: list[str], log: Path, cwd: Path | None = None) -> None:
    with log.open("ab") as out:
        done = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed (exit {done.returncode}); {log}:\n{tail}")


def llama_server(release: str | None = None) -> Path:
    """llama-server built from the llama.cpp sources vendored in the llama-cpp-python sdist, with
    llama-cpp-python's own build defaults (Release, native CPU flags, OpenMP)."""
    release = release or llama_cpp_version()
    target = cache_root() / f"llama-server-{release}" / "llama-server"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    log = target.parent / "build.log"
    print(f"  building llama-server {release} once (log: {log}); this takes minutes", flush=True)
    with tempfile.TemporaryDirectory(prefix="nexa-llama-server-") as tmp:
        work = Path(tmp)
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"llama-cpp-python=={release}",
                "-d",
                str(work),
            ],
            log,
        )
        sdist = next(work.glob("llama_cpp_python-*.tar.gz"))
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        build = work / "build"
        generator = ["-G", "Ninja"] if shutil.which("ninja") else []
        _run(
            [
                "cmake",
                "-S",
                str(source),
                "-B",
                str(build),
                *generator,
                "-DCMAKE_BUILD_TYPE=Release",
                "-DBUILD_SHARED_LIBS=OFF",
                "-DLLAMA_BUILD_SERVER=ON",
                "-DLLAMA_BUILD_TESTS=OFF",
                "-DLLAMA_BUILD_EXAMPLES=OFF",
                "-DLLAMA_BUILD_APP=OFF",
                # No network at build time: the web UI is neither fetched nor built (npm).
                "-DLLAMA_USE_PREBUILT_UI=OFF",
                "-DLLAMA_BUILD_UI=OFF",
                "-DLLAMA_CURL=OFF",
                "-DLLAMA_OPENSSL=OFF",
            ],
            log,
        )
        jobs = str(os.cpu_count() or 2)
        _run(["nice", "-n", "10", "cmake", "--build", str(build), "--target", "llama-server", "-j", jobs], log)
        shutil.copy2(build / "bin" / "llama-server", target.with_suffix(".tmp"))
        target.with_suffix(".tmp").rename(target)
    return target


def peers_python(release: str | None = None) -> Path:
    """A venv with llama-cpp-python[server] at the pinned release (its wheel comes from pip's
    cache when `make install` built it), kept apart from the project's own venv."""
    release = release or llama_cpp_version()
    venv = cache_root() / f"peers-venv-{release}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists() and marker.read_text() == PEER_REQUIREMENTS.read_text():
        return python
    venv.parent.mkdir(parents=True, exist_ok=True)
    log = venv.parent / f"peers-venv-{release}.log"
    print(f"  installing llama-cpp-python[server] {release} into {venv} (log: {log})", flush=True)
    _run([sys.executable, "-m", "venv", "--clear", str(venv)], log)
    _run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-c",
            str(REPO / "constraints.txt"),
            "-r",
            str(PEER_REQUIREMENTS),
        ],
        log,
    )
    marker.write_text(PEER_REQUIREMENTS.read_text())
    return python
