"""Redis from the machine's packages (Debian ``redis-server``): the Celery broker of the scaled
stack.

Port ``NEWSWATCH_REDIS_PORT`` (default 6379) on 127.0.0.1, data under ``<state>/redis/data``.
The broker's queue is also written to an append-only file, so a Redis restart does not drop the
task messages that were waiting for a worker.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from pipeline.errors import SetupError
from pipeline.stack.command_service import CommandService, env_port

__all__ = ["RedisService", "broker_url", "redis_port"]

DEFAULT_PORT = 6379


def redis_port() -> int:
    return env_port("NEWSWATCH_REDIS_PORT", DEFAULT_PORT)


def broker_url(port: int | None = None) -> str:
    return f"redis://127.0.0.1:{port or redis_port()}/0"


def redis_server() -> Path:
    found = shutil.which("redis-server") or ("/usr/bin/redis-server"
                                             if Path("/usr/bin/redis-server").exists() else None)
    if not found:
        raise SetupError("redis-server is missing: install it (Debian: apt-get install redis-server, "
                         "or `make install-scale`)")
    return Path(found)


def ping(port: int, timeout: float = 2.0) -> bool:
    """True when a Redis server answers PING on 127.0.0.1:``port`` (RESP spoken by hand: the
    stack needs no client library for this)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


class RedisService(CommandService):
    """The Redis server of this state folder."""

    name = "redis"
    start_timeout = 30.0

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self) -> str:
        return broker_url()

    def ports(self) -> list[int]:
        return [redis_port()]

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)

    def command(self) -> list[str]:
        return [str(redis_server()), "--port", str(redis_port()), "--bind", "127.0.0.1",
                "--dir", str(self.data_dir), "--daemonize", "no", "--save", "",
                "--appendonly", "yes", "--logfile", ""]

    def ready(self) -> bool:
        return ping(redis_port())
