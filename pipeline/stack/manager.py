"""Bring the local stack up and down: which services, in which order, with which ports.

Ports come from the settings (``NEWSWATCH_ES_URL``, ``NEWSWATCH_SMTP_PORT``,
``NEWSWATCH_FEED_PORT``); state (pids, data, logs, mail) lives under ``NEWSWATCH_STATE_DIR``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack import elasticsearch as es_node
from pipeline.stack.common import (
    deferred_signals,
    port_is_free,
    processes_using,
    read_pid,
    stop_pid,
    tail,
    wait_for,
)

SERVICES = ("elasticsearch", "smtp", "feeds", "airflow")


def feed_port() -> int:
    return int(os.environ.get("NEWSWATCH_FEED_PORT", "8765"))


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    detail: str


def es_config(settings: Settings) -> es_node.NodeConfig:
    return es_node.NodeConfig(state_dir=settings.state_dir,
                              port=es_node.port_from_url(settings.elasticsearch.url),
                              heap=os.environ.get("NEWSWATCH_ES_HEAP", "512m"))


def maildir(settings: Settings) -> Path:
    return settings.state_dir / "mail"


def _start_python_service(name: str, module: str, args: list[str], port: int,
                          settings: Settings) -> int:
    run_dir = settings.state_dir / name
    run_dir.mkdir(parents=True, exist_ok=True)
    pid_file = run_dir / f"{name}.pid"
    pid = read_pid(pid_file)
    if pid:
        return pid
    if not port_is_free(port):
        raise SetupError(f"port {port} for the {name} service is already taken; stop what uses "
                         f"it or choose another port (see README, 'Configuration').")
    log = run_dir / f"{name}.log"
    with log.open("a") as fh, deferred_signals():
        proc = subprocess.Popen([sys.executable, "-m", module, *args], stdout=fh,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        pid_file.write_text(str(proc.pid))
    if not wait_for(lambda: not port_is_free(port) or proc.poll() is not None, 30, 0.1) \
            or proc.poll() is not None:
        raise SetupError(f"the {name} service did not start:\n{tail(log)}")
    return proc.pid


def _stop_python_service(name: str, settings: Settings) -> bool:
    pid_file = settings.state_dir / name / f"{name}.pid"
    pid = read_pid(pid_file)
    if not pid:
        return False
    stop_pid(pid, group=True, timeout=15)
    pid_file.unlink(missing_ok=True)
    return True


def up(settings: Settings, services: list[str]) -> list[ServiceStatus]:
    """Start the named services (idempotent) and return their status."""
    unknown = set(services) - set(SERVICES)
    if unknown:
        raise SetupError(f"unknown services {sorted(unknown)}; choose from {list(SERVICES)}")
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if "elasticsearch" in services:
        es_node.start(es_config(settings))
    if "smtp" in services:
        _start_python_service("smtp", "pipeline.stack.smtp",
                              ["--port", str(settings.smtp.port), "--maildir",
                               str(maildir(settings))], settings.smtp.port, settings)
    if "feeds" in services:
        _start_python_service("feeds", "pipeline.stack.feedserver",
                              ["--port", str(feed_port())], feed_port(), settings)
    if "airflow" in services:
        from pipeline.stack import airflow as airflow_stack

        airflow_stack.start(settings)
    return status(settings)


def down(settings: Settings, services: list[str] | None = None) -> list[str]:
    """Stop services (all by default) in reverse order; returns the ones that were running.

    Every service gets its stop attempt even when an earlier one fails; failures are raised
    together at the end so nothing is left running silently.
    """
    stopped: list[str] = []
    failures: list[str] = []
    for name in reversed(services or list(SERVICES)):
        try:
            if name == "elasticsearch":
                was = _stop_elasticsearch(settings)
            elif name == "airflow":
                was = _stop_airflow(settings)
            else:
                was = _stop_python_service(name, settings)
        except (OSError, SetupError) as exc:
            failures.append(f"{name}: {exc}")
            continue
        if was:
            stopped.append(name)
    if failures:
        raise SetupError("could not stop: " + "; ".join(failures))
    return stopped


def _stop_elasticsearch(settings: Settings) -> bool:
    """Stop the node of this state folder: by its pid file, and then any node still writing under
    that folder (one interrupted while starting may not have written its pid file yet)."""
    cfg = es_config(settings)
    was = es_node.stop(cfg)
    for pid in processes_using(cfg.state_dir / "elasticsearch", "org.elasticsearch"):
        stop_pid(pid, timeout=60)
        was = True
    return was


def _stop_airflow(settings: Settings) -> bool:
    try:
        from pipeline.stack import airflow as airflow_stack
    except ImportError:
        return False
    return airflow_stack.stop(settings)


def status(settings: Settings) -> list[ServiceStatus]:
    cfg = es_config(settings)
    out = [ServiceStatus("elasticsearch", es_node.is_healthy(cfg.url), cfg.url)]
    out.append(ServiceStatus("smtp", not port_is_free(settings.smtp.port),
                             f"127.0.0.1:{settings.smtp.port}, mail in {maildir(settings) / 'new'}"))
    out.append(ServiceStatus("feeds", not port_is_free(feed_port()),
                             f"http://127.0.0.1:{feed_port()}/feed.xml"))
    try:
        from pipeline.stack import airflow as airflow_stack

        out.append(airflow_stack.status(settings))
    except ImportError:
        out.append(ServiceStatus("airflow", False, "not available"))
    return out
