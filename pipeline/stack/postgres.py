"""PostgreSQL from the machine's packages (Debian ``postgresql``): the Airflow metadata database of
the scaled stack.

One cluster per state folder in ``<state>/postgres/data``, listening on 127.0.0.1 only (TCP, no
Unix socket: a socket path under a deep state folder can exceed the 107-byte limit), port
``NEWSWATCH_PG_PORT`` (default 5433, beside a system server on 5432). PostgreSQL refuses to run as
root, so when we are root ``initdb`` and ``postgres`` run as the unprivileged system user the
Elasticsearch node already uses (``setpriv``), owning the data folder; otherwise as ourselves.
Authentication is ``trust`` on loopback: the server is reachable from this machine only, like
the rest of the local stack.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from pathlib import Path

from pipeline.errors import SetupError
from pipeline.stack.command_service import CommandService, env_port
from pipeline.stack.processes import chown_tree, ensure_service_user

__all__ = ["DATABASE", "USER", "PostgresService", "postgres_bin", "sqlalchemy_url"]

DATABASE = "airflow"
USER = "airflow"
DEFAULT_PORT = 5433


def postgres_bin(program: str) -> Path:
    """A PostgreSQL server program: beside ``postgres`` on PATH, else Debian's versioned folder."""
    found = shutil.which(program)
    candidates = [Path(found)] if found else []
    candidates += [Path(p) / program for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    for path in candidates:
        if path.exists():
            return path
    raise SetupError(f"PostgreSQL's {program} is missing: install the server (Debian: apt-get install "
                     "postgresql, or `make install-scale`)")


def pg_port() -> int:
    return env_port("NEWSWATCH_PG_PORT", DEFAULT_PORT)


def sqlalchemy_url(port: int | None = None, driver: str = "postgresql+psycopg2") -> str:
    return f"{driver}://{USER}@127.0.0.1:{port or pg_port()}/{DATABASE}"


class PostgresService(CommandService):
    """The PostgreSQL server of this state folder."""

    name = "postgres"
    start_timeout = 60.0
    stop_signal = signal.SIGINT  # "fast" shutdown: roll back open transactions, then exit

    @property
    def data_dir(self) -> Path:
        return self.folder / "data"

    def url(self) -> str:
        return sqlalchemy_url(pg_port())

    def ports(self) -> list[int]:
        return [pg_port()]

    def _as_owner(self, cmd: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return cmd
        uid, gid = ensure_service_user("PostgreSQL")
        return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *cmd]

    def prepare(self) -> None:
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            uid, gid = ensure_service_user("PostgreSQL")
            chown_tree(self.folder, uid, gid)
            for parent in self.folder.resolve().parents:  # the service user must reach its folder
                if parent.stat().st_mode & 0o001 == 0:
                    raise SetupError(f"{parent} is not searchable by other users, so PostgreSQL (run "
                                     f"as an unprivileged user) cannot reach {self.folder}; choose a "
                                     "NEWSWATCH_STATE_DIR outside it")
        if (self.data_dir / "PG_VERSION").exists():
            (self.data_dir / "postmaster.pid").unlink(missing_ok=True)  # left by a killed server
            return
        proc = subprocess.run(self._as_owner([str(postgres_bin("initdb")), "-D", str(self.data_dir),
                                              "-U", USER, "-A", "trust", "-E", "UTF8",
                                              "--no-instructions"]),
                              capture_output=True, text=True, cwd="/")
        if proc.returncode != 0:
            raise SetupError(f"initdb failed for {self.data_dir}: {proc.stderr.strip()[-800:]}")

    def command(self) -> list[str]:
        return self._as_owner([
            str(postgres_bin("postgres")), "-D", str(self.data_dir), "-p", str(pg_port()),
            "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
            "-c", "max_connections=200", "-c", "shared_buffers=64MB",
            "-c", "logging_collector=off"])

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("PGDATA", None)
        return env

    def _psql(self, database: str, sql: str) -> str:
        proc = subprocess.run([str(postgres_bin("psql")), "-h", "127.0.0.1", "-p", str(pg_port()),
                               "-U", USER, "-d", database, "-tAc", sql],
                              capture_output=True, text=True, timeout=30)
        if proc.returncode != 0:
            raise SetupError(f"psql on {database}: {proc.stderr.strip()}")
        return proc.stdout.strip()

    def ready(self) -> bool:
        proc = subprocess.run([str(postgres_bin("pg_isready")), "-h", "127.0.0.1", "-p", str(pg_port()),
                               "-U", USER, "-d", "postgres", "-t", "2"], capture_output=True, timeout=10)
        return proc.returncode == 0

    def after_start(self) -> None:
        if self._psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'") != "1":
            self._psql("postgres", f"CREATE DATABASE {DATABASE}")

    def detail(self) -> str:
        return f"127.0.0.1:{pg_port()} database {DATABASE}, data in {self.data_dir}"
