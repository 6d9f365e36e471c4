"""A real PostgreSQL server for the tests: a private cluster (initdb) in a temporary folder, on a
free 127.0.0.1 port and a socket in that folder, run by an unprivileged user (PostgreSQL refuses
root), started and stopped by its PID. Debian's `postgresql` package provides the binaries
(`scripts/install-postgresql.sh` installs it where missing)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from nexa_cli.supervisor import free_port

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def bin_dir() -> Path | None:
    """The newest installed server's binaries (Debian keeps them off PATH, per major version)."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parent.parent.name))
    if found:
        return found[-1].parent
    postgres = shutil.which("postgres")
    return Path(postgres).parent if postgres else None


class PostgresServer:
    def __init__(self, binaries: Path, log_path: Path) -> None:
        self.binaries = binaries
        self.log_path = log_path
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="nexa-pg-"))
        self.data = self.root / "data"
        self.process: subprocess.Popen[bytes] | None = None
        # Root may not run PostgreSQL: its files and processes belong to the `postgres` user.
        self.user = "postgres" if os.geteuid() == 0 else None
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)

    @property
    def url(self) -> str:
        return f"postgresql://nexa@127.0.0.1:{self.port}/nexa"

    def _run(self, *argv: str) -> None:
        env = {"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        subprocess.run(argv, check=True, cwd=self.root, env=env, user=self.user, capture_output=True, timeout=120)

    def start(self) -> None:
        self._run(str(self.binaries / "initdb"), "-D", str(self.data), "-U", "nexa", "-A", "trust", "-E", "UTF8")
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(self.binaries / "postgres"), "-D", str(self.data), "-p", str(self.port),
             "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
             "-c", "fsync=off", "-c", "max_connections=40"],
            cwd=self.root, user=self.user, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.process.returncode}; see {self.log_path}")
            if self._accepts():
                self._run(
                    str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "nexa", "nexa"
                )
                return
            time.sleep(0.2)
        raise RuntimeError(f"postgres did not accept connections within {START_TIMEOUT_S:.0f} s; see {self.log_path}")

    def _accepts(self) -> bool:
        try:
            self._run(str(self.binaries / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port))
        except subprocess.CalledProcessError:
            return False
        with contextlib.closing(socket.socket()) as sock:
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def stop(self) -> None:
        """Fast shutdown (SIGINT) of the postmaster by its PID; SIGKILL past the timeout."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        shutil.rmtree(self.root, ignore_errors=True)
