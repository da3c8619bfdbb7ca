"""The services that are modules of this package run as background processes: the SMTP mail
catcher (:mod:`pipeline.stack.smtp`) and the sample feed server (:mod:`pipeline.stack.feedserver`).

Each runs as ``python -m <module>`` in its own session, its pid in ``<name>/<name>.pid`` and its
output in ``<name>/<name>.log``; stopping signals the whole process group.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack.ports import port_is_free
from pipeline.stack.processes import deferred_signals, read_pid, stop_pid, tail, wait_for
from pipeline.stack.service import Service, ServiceStatus

__all__ = ["FeedService", "PythonModuleService", "SmtpService", "feed_port", "maildir"]


def feed_port() -> int:
    return int(os.environ.get("NEWSWATCH_FEED_PORT", "8765"))


def maildir(settings: Settings) -> Path:
    """Where the mail catcher of this state folder stores every message."""
    return settings.state_dir / "mail"


class PythonModuleService(Service):
    """A module of this package serving one port, run in the background."""

    module: ClassVar[str]

    @abstractmethod
    def port(self) -> int: ...

    @abstractmethod
    def args(self) -> list[str]:
        """Command-line arguments of the module."""

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
            return
        port = self.port()
        if not port_is_free(port):
            raise SetupError(f"port {port} for the {self.name} service is already taken; stop what "
                             f"uses it or choose another port (see README, 'Configuration').")
        env = {**os.environ, "TMPDIR": str(self.fresh_tmp_dir())}
        with self.log_file.open("a") as fh, deferred_signals():
            proc = subprocess.Popen([sys.executable, "-m", self.module, *self.args()], stdout=fh,
                                    stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                                    start_new_session=True)
            self.pid_file.write_text(str(proc.pid))
        if not wait_for(lambda: not port_is_free(port) or proc.poll() is not None, 30, 0.1) \
                or proc.poll() is not None:
            raise SetupError(f"the {self.name} service did not start:\n{tail(self.log_file)}")

    def stop(self) -> bool:
        pid = read_pid(self.pid_file)
        if pid:
            stop_pid(pid, group=True, timeout=15)
            self.pid_file.unlink(missing_ok=True)
        self.remove_tmp_dir()
        return pid is not None

    def status(self) -> ServiceStatus:
        return ServiceStatus(self.name, not port_is_free(self.port()), self.detail())

    def detail(self) -> str:
        return self.url()


class SmtpService(PythonModuleService):
    """The mail catcher: every message the pipeline sends lands as an ``.eml`` file."""

    name = "smtp"
    module = "pipeline.stack.smtp"

    @property
    def maildir(self) -> Path:
        return maildir(self.settings)

    def port(self) -> int:
        return self.settings.smtp.port

    def args(self) -> list[str]:
        return ["--port", str(self.port()), "--maildir", str(self.maildir)]

    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port()}"

    def detail(self) -> str:
        return f"127.0.0.1:{self.port()}, mail in {self.maildir / 'new'}"

    def guide(self, started: bool) -> str | None:
        # shown even when this command did not start it: an earlier `stack up` may have
        return f"  Alert emails   {self.maildir / 'new'}/*.eml   (open with any mail client)"


class FeedService(PythonModuleService):
    """The sample feed server, releasing the demo items over time."""

    name = "feeds"
    module = "pipeline.stack.feedserver"

    def port(self) -> int:
        return feed_port()

    def args(self) -> list[str]:
        return ["--port", str(self.port())]

    def url(self) -> str:
        return f"http://127.0.0.1:{self.port()}"

    def detail(self) -> str:
        return f"{self.url()}/feed.xml"

    def guide(self, started: bool) -> str | None:
        if not started:
            return None
        base = self.url()
        return f"  Sample feeds   {base}/   (release the next item now: curl '{base}/release?n=1')"

    def demo_environment(self) -> dict[str, tuple[str, str]]:
        local = self.settings.config_dir / "sources.local.yaml"
        return {"NEWSWATCH_SOURCES_FILE": (str(local), "the sample feeds as sources")}

    def release_status(self, timeout: float = 1.0) -> dict | None:
        """The server's ``/status`` document (items released so far, of how many), or None
        while it does not answer (its outage is reported by ``status``, not here)."""
        try:
            with urllib.request.urlopen(f"{self.url()}/status", timeout=timeout) as resp:  # noqa: S310 - loopback
                return json.loads(resp.read())
        except (OSError, ValueError):
            return None
