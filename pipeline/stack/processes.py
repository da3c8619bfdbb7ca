"""Processes of the local services: pid files, liveness, stopping, finding, waiting, and the
unprivileged user they run as when the stack runs as root.

A service records the pid of what it started in a pid file under its state folder; everything
here works from that file (or, for a service interrupted before it wrote one, from the files the
process holds open under the folder), so a later command can stop exactly what an earlier one
started.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pipeline.errors import SetupError

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def wait_for(check: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    """Poll ``check`` until it returns True or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return True
        except Exception:  # noqa: BLE001, S110 - a probe that raises means "not yet"
            pass
        time.sleep(interval)
    return False


def read_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None (and a stale file is removed)."""
    try:
        pid = int(pid_file.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def pid_alive(pid: int) -> bool:
    """True for a running process; a zombie (exited, not yet reaped) counts as dead."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may itself hold spaces.
    return stat.rsplit(")", 1)[-1].split()[:1] != ["Z"]


def stop_pid(pid: int, *, group: bool = False, first: int = signal.SIGTERM,
             timeout: float = 30.0) -> None:
    """Send ``first`` to a process (or its group), wait, then SIGKILL what is left."""
    def send(sig: int) -> None:
        try:
            if group:
                os.killpg(os.getpgid(pid), sig)
            else:
                os.kill(pid, sig)
        except ProcessLookupError:
            pass

    send(first)
    if wait_for(lambda: not pid_alive(pid), timeout, 0.2):
        return
    send(signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, 0.2)


def tail(path: Path, lines: int = 20) -> str:
    """The last lines of a service's log, to quote in the error when it fails to start."""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return f"(no log at {path})"


@contextmanager
def deferred_signals(signals: tuple[int, ...] = STOP_SIGNALS) -> Iterator[None]:
    """Hold back Python-level handlers of ``signals`` until the block ends.

    Around "start a process, then write its pid file": an interrupt between the two would leave a
    service running that no pid file names, so no ``down`` could find it. A signal that arrives
    meanwhile is delivered (its original handler called) as soon as the block ends. Handlers are
    swapped rather than the signal mask blocked, because a child inherits a blocked mask and would
    then ignore the very signals meant to stop it; a caught signal is reset to default on exec.
    Outside the main thread (where handlers cannot be changed) the block runs as it is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    saved = {}
    for sig in signals:
        current = signal.getsignal(sig)
        if callable(current):  # SIG_IGN / SIG_DFL need no deferring (and must not become caught)
            saved[sig] = signal.signal(sig, lambda signum, _frame: pending.append(signum))
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        for sig in dict.fromkeys(pending):
            handler = saved[sig]
            if callable(handler):
                handler(sig, None)


def processes_using(folder: Path, command_hint: str) -> list[int]:
    """Pids of processes (not this one) whose command line contains ``command_hint`` and that hold
    a file under ``folder`` open: how a service whose pid file is missing (interrupted before it
    wrote one) is still found, by the state folder only it writes to."""
    prefix = f"{Path(folder).resolve()}/"
    hint = command_hint.encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if hint not in (entry / "cmdline").read_bytes():
                continue
            targets = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to inspect
            continue
        if any(t.startswith(prefix) for t in targets) and pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


# Elasticsearch refuses to run as root and PostgreSQL cannot: when the stack runs as root, they
# run as this system user, created on first need, owning their folders.
SERVICE_USER = "newswatch"


def ensure_service_user(program: str) -> tuple[int, int]:
    """uid and gid of ``SERVICE_USER``, created when missing; ``program`` names who needs it."""
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        proc = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                               "/usr/sbin/nologin", SERVICE_USER], capture_output=True, text=True)
        if proc.returncode != 0:
            raise SetupError(
                f"{program} cannot run as root and the user {SERVICE_USER!r} could not be "
                f"created: {proc.stderr.strip()}. Run as a normal user instead."
            ) from None
        entry = pwd.getpwnam(SERVICE_USER)
    return entry.pw_uid, entry.pw_gid


def chown_tree(path: Path, uid: int, gid: int) -> None:
    """Give ``path`` and everything under it to ``uid``:``gid`` (links themselves, not targets)."""
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(root, name), uid, gid)
