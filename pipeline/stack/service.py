"""One local service behind one interface: what ``newswatch run``, ``newswatch stack`` and the
tests hold, whatever runs behind it (a Java node, a Python module, Airflow's processes).

Every service owns the folder ``<state_dir>/<name>``: its pid files, logs, data, and ``tmp/``,
the temporary folder its processes are pointed at (``TMPDIR``, ``ES_TMPDIR``) so that nothing of
theirs piles up in the system's temporary folder. ``start`` empties ``tmp/`` (what a killed run
left there is no longer in use) and ``stop`` removes it.
"""

from __future__ import annotations

import shutil
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from pipeline.settings import Settings
from pipeline.stack.processes import read_pid

__all__ = ["Service", "ServiceStatus"]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    detail: str


class Service(ABC):
    """A service of the local stack, for the state folder and ports of ``settings``."""

    name: ClassVar[str]

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def folder(self) -> Path:
        """Everything this service writes: pid files, logs, data, temporary files."""
        return self.settings.state_dir / self.name

    @property
    def tmp_dir(self) -> Path:
        return self.folder / "tmp"

    @abstractmethod
    def url(self) -> str:
        """Where the service answers."""

    @abstractmethod
    def start(self) -> None:
        """Start it unless this state folder already runs it, and wait until it answers; a
        ``SetupError`` that names the cause when it cannot."""

    @abstractmethod
    def stop(self) -> bool:
        """Stop what this state folder runs and remove its temporary files. True when something
        was running."""

    @abstractmethod
    def status(self) -> ServiceStatus:
        """Whether it answers now, with a line saying where."""

    @abstractmethod
    def pid_files(self) -> list[Path]:
        """The pid files of the processes this service starts."""

    def pids(self) -> set[int]:
        """The live processes named by this service's pid files."""
        return {pid for pid in (read_pid(path) for path in self.pid_files()) if pid}

    def guide(self, started: bool) -> str | None:
        """One line telling a person where to look at this service, or None when there is
        nothing to show (``started``: whether this command started it)."""
        return None

    def demo_environment(self) -> dict[str, tuple[str, str]]:
        """Variables ``newswatch run`` sets for the demo when it starts this service and the
        user has not set them: name -> (value, why)."""
        return {}

    def fresh_tmp_dir(self) -> Path:
        """An empty ``tmp/`` for a start. Only called when no process of this service runs, so
        anything still in it was left by one that was killed."""
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        return self.tmp_dir

    def remove_tmp_dir(self) -> None:
        shutil.rmtree(self.tmp_dir, ignore_errors=True)
