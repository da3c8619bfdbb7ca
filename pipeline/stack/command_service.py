"""A service that is one long-running command in its own session: Redis, PostgreSQL, each Airflow
component of the scaled stack, and the package's own servers (mail catcher, sample feeds).

The command runs in the foreground of a new session (so stopping signals its whole process group,
the Celery pool and task processes included), its pid in ``<name>/<name>.pid``, its output in
``<name>/<name>.log`` and ``TMPDIR`` pointed at ``<name>/tmp``. ``start`` waits for ``ready`` and
quotes the log's tail when the process exits or never gets there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from pipeline.errors import SetupError
from pipeline.stack.ports import port_is_free
from pipeline.stack.processes import deferred_signals, read_pid, stop_pid, tail, wait_for
from pipeline.stack.service import Service, ServiceStatus

__all__ = ["CommandService", "env_port"]


def env_port(var: str, default: int) -> int:
    """A port from ``var``; a value that is not a port number is an error naming the variable."""
    raw = os.environ.get(var, str(default))
    try:
        port = int(raw)
    except ValueError:
        port = 0
    if not 0 < port < 65536:
        raise SetupError(f"{var}={raw!r} is not a port number (1-65535)")
    return port


class CommandService(Service):
    """One command, started in its own session and stopped by signalling that session."""

    start_timeout: ClassVar[float] = 120.0
    stop_signal: ClassVar[int] = signal.SIGTERM
    stop_timeout: ClassVar[float] = 30.0

    @abstractmethod
    def command(self) -> list[str]:
        """The command line (its first word an absolute path)."""

    @abstractmethod
    def ready(self) -> bool:
        """True once the service answers."""

    def ports(self) -> list[int]:
        """Ports the command listens on: checked free before it starts."""
        return []

    def environment(self) -> dict[str, str]:
        return {**os.environ, "TMPDIR": str(self.tmp_dir)}

    def prepare(self) -> None:
        """Work before the first start (create a database folder, migrate a schema)."""

    def after_start(self) -> None:
        """Work once it answers (register something in it)."""

    @property
    def pid_file(self) -> Path:
        return self.folder / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.folder / f"{self.name}.log"

    def pid_files(self) -> list[Path]:
        return [self.pid_file]

    def start(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        if read_pid(self.pid_file):
            if wait_for(self.ready, 10, 0.5):
                return
            self.stop()
        for port in self.ports():
            if not port_is_free(port):
                raise SetupError(f"port {port} for {self.name} is already taken; stop what uses it "
                                 f"(ss -ltnp 'sport = :{port}') or choose another port")
        self.fresh_tmp_dir()
        self.prepare()
        with self.log_file.open("a") as log, deferred_signals():
            log.write(f"\n--- newswatch: {self.name} at {time.strftime('%FT%TZ', time.gmtime())}\n")
            log.flush()
            proc = subprocess.Popen(self.command(), env=self.environment(), stdout=log,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    cwd=self.folder, start_new_session=True)
            self.pid_file.write_text(str(proc.pid))
        try:
            if not wait_for(lambda: proc.poll() is not None or self.ready(), self.start_timeout, 0.5) \
                    or proc.poll() is not None:
                raise SetupError(f"{self.name} did not start within {self.start_timeout:.0f}s "
                                 f"(log {self.log_file}):\n{tail(self.log_file)}")
            self.after_start()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> bool:
        pid = read_pid(self.pid_file)
        if pid:
            try:
                os.waitpid(pid, os.WNOHANG)  # our child: reap it, or it stays a "live" zombie
            except ChildProcessError:
                pass
            stop_pid(pid, group=True, first=self.stop_signal, timeout=self.stop_timeout)
            self._kill_group_leftovers(pid)
            self.pid_file.unlink(missing_ok=True)
        self.remove_tmp_dir()
        return pid is not None

    @staticmethod
    def _kill_group_leftovers(pgid: int) -> None:
        """A group member that outlived its leader (a forked task process) gets SIGKILL too."""
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def status(self) -> ServiceStatus:
        try:
            ok = bool(read_pid(self.pid_file)) and self.ready()
        except Exception:  # noqa: BLE001 - a probe that raises means "not answering"
            ok = False
        return ServiceStatus(self.name, ok, self.detail())

    def detail(self) -> str:
        return self.url()
