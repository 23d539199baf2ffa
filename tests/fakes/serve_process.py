"""``ponder serve`` as a child process, for tests that drive it the way users start it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``ponder serve`` as a child process; ``base_url`` is its OpenAI base URL, ``output`` what it printed."""

    def __init__(self, *args: str, start_timeout_s: float = 30.0, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        fd, name = tempfile.mkstemp(prefix="ponder-serve-", suffix=".log")
        os.close(fd)
        self.log = Path(name)
        self.args = [sys.executable, "-m", "ponder.cli", "serve", "--port", str(self.port), *args]
        self.start_timeout_s = start_timeout_s
        self.env = env  # None: this process's environment
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> ServeProcess:
        with self.log.open("wb") as out:  # a file, not a pipe nobody reads that could fill and stall the server
            self.proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=self.env)
        deadline = time.monotonic() + self.start_timeout_s
        while True:
            try:
                if httpx.get(self.base_url[:-3] + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise RuntimeError(f"ponder serve did not start:\n{self.output[-3000:]}")
            time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # ponder serve stops its llama-server (if any) on the way out
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.unlink(missing_ok=True)
