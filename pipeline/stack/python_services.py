"""The services that are modules of this package run as background processes: the SMTP mail
catcher (:mod:`pipeline.stack.smtp`) and the sample feed server (:mod:`pipeline.stack.feedserver`).

Each runs as ``python -m <module>`` through :class:`~pipeline.stack.command_service.CommandService`
(its own session, pid and log under ``<name>/``, stopped by signalling the process group).
"""

from __future__ import annotations

import json
import os
import sys
import urllib.request
from abc import abstractmethod
from pathlib import Path
from typing import ClassVar

from pipeline.settings import Settings
from pipeline.stack.command_service import CommandService
from pipeline.stack.ports import port_is_free
from pipeline.stack.service import ServiceStatus

__all__ = ["FeedService", "PythonModuleService", "SmtpService", "feed_port", "maildir"]


def feed_port() -> int:
    return int(os.environ.get("NEWSWATCH_FEED_PORT", "8765"))


def maildir(settings: Settings) -> Path:
    """Where the mail catcher of this state folder stores every message."""
    return settings.state_dir / "mail"


class PythonModuleService(CommandService):
    """A module of this package serving one port, run in the background (``python -m``): a
    command service that is ready once its port answers."""

    module: ClassVar[str]
    start_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 15.0

    @abstractmethod
    def port(self) -> int: ...

    @abstractmethod
    def args(self) -> list[str]:
        """Command-line arguments of the module."""

    def command(self) -> list[str]:
        return [sys.executable, "-m", self.module, *self.args()]

    def ports(self) -> list[int]:
        return [self.port()]

    def ready(self) -> bool:
        return not port_is_free(self.port())

    def status(self) -> ServiceStatus:
        # up whoever started it: the pipeline uses the port either way
        return ServiceStatus(self.name, self.ready(), self.detail())


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
