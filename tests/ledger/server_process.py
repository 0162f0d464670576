"""A settlement service in a real child process on 127.0.0.1, which tests can SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pg_url_with_schema(url: str, schema: str) -> str:
    """A PostgreSQL URL whose connections use ``schema`` (for a server given only a URL)."""
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3D{schema}"


class ServerProcess:
    """``python -m offcash.api`` (or any argv) serving on a loopback port."""

    def __init__(self, argv: list[str], port: int, log: Path, env: dict[str, str]) -> None:
        self.argv, self.port, self.log, self.env = argv, port, log, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{port}"

    @classmethod
    def api(cls, db_url: str, token: str, log: Path) -> ServerProcess:
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "offcash.api",
            "--db",
            db_url,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        return cls(argv, port, log, {**os.environ, "OFFCASH_TOKEN": token})

    def start(self, timeout: float = 60.0) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, stdout=out, stderr=subprocess.STDOUT, env=self.env
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited {self.proc.returncode}: see {self.log}")
            try:
                if httpx.get(self.url + "/openapi.json", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready after {timeout} s: see {self.log}")

    def kill(self) -> None:
        """SIGKILL: no shutdown handler, no flush, no rollback runs in the server."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
