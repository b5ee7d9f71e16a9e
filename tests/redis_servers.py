"""Real Redis servers of the tests' own, on ports of their own, and a listener that accepts
connections and never answers (what a hung Redis looks like to a client)."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
# What docs/getting-started.md recommends for the profile cache: an outage costs at most this
# long once.
TIMEOUTS = {"socket_connect_timeout": 0.25, "socket_timeout": 0.5}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def need_redis_server() -> None:
    if not Path(REDIS_SERVER).exists():
        pytest.skip("needs redis-server (apt-get install redis-server)")


def cache_settings(port: int, prefix: str) -> dict:
    """A CACHES entry for a Redis on ``port``, with the recommended timeouts."""
    return {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{port}/0",
        "KEY_PREFIX": prefix,
        "OPTIONS": dict(TIMEOUTS),
    }


class RedisServer:
    """``redis-server`` on ``port``, keeping its data in ``directory``: stopped with
    ``save=True`` and started again, it comes back with the keys it had (a stale cache)."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                REDIS_SERVER,
                "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
                "--dir", str(self.directory), "--dbfilename", "dump.rdb",
                "--logfile", str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on {self.port}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *words: str) -> bytes:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as conn:
            payload = f"*{len(words)}\r\n" + "".join(f"${len(w)}\r\n{w}\r\n" for w in words)
            conn.sendall(payload.encode())
            try:
                return conn.recv(65536)
            except OSError:
                return b""

    def stop(self, *, save: bool = False) -> None:
        """Shut it down (after writing its data to disk with ``save``); the port then refuses
        connections."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.command("SHUTDOWN", "SAVE" if save else "NOSAVE")
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class HungListener:
    """Accepts connections on ``port`` and never answers: every read times out."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.accepted: list[socket.socket] = []
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", port))
        self._server.listen(256)
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return  # closed
            self.accepted.append(conn)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
        self._server.close()
        for conn in self.accepted:
            conn.close()
        self._thread.join(timeout=5)
