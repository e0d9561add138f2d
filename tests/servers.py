"""Real servers that tests start themselves: free ports and a private, restartable ``redis-server``."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """A ``redis-server`` child on a fixed port, without persistence, that can be SIGKILLed and started again.

    Private to a test module, so killing and restarting it never disturbs the shared server at 6379.
    """

    def __init__(self, port: int, log_path: Path, *, password: str | None = None) -> None:
        self.port = port
        self.log_path = log_path
        self.password = password
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            socket_timeout=2.0,
            socket_connect_timeout=2.0,
        )

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start the server and wait (at most 5 s) until it answers PING; fail the test otherwise."""
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not on PATH (Debian's redis-server; see scripts/services.sh)")
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        complaint: str | None = "not started"
        client = self.client()
        try:
            deadline = time.monotonic() + 5.0
            while complaint is not None and time.monotonic() < deadline:
                complaint = self._ping(client)
                if complaint is not None:
                    time.sleep(0.05)
        finally:
            client.close()
        if complaint is not None:
            self.kill()
            pytest.fail(f"redis-server did not start on port {self.port} ({complaint}): {self.log_tail()}")

    def _ping(self, client: redis.Redis) -> str | None:
        if not self.running():
            return "redis-server exited"
        try:
            return None if client.ping() else "no PONG"
        except redis.RedisError as err:
            return str(err)

    def kill(self) -> None:
        """SIGKILL: everything in it is lost, as in a crash (no persistence)."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(timeout=5)
            self.proc = None

    def log_tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-500:] if self.log_path.exists() else ""
