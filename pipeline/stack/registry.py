"""Which services the local stack has, in start order, and bringing them up and down.

Ports come from the settings (``NEWSWATCH_ES_URL``, ``NEWSWATCH_SMTP_PORT``,
``NEWSWATCH_FEED_PORT``, ``NEWSWATCH_AIRFLOW_PORT``); state (pids, data, logs, mail, temporary
files) lives under ``NEWSWATCH_STATE_DIR``. A new service is one :class:`Service` subclass added
to ``REGISTRY``: nothing here or in the commands names a service.
"""

from __future__ import annotations

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack.airflow import AirflowService
from pipeline.stack.elasticsearch import ElasticsearchService
from pipeline.stack.python_services import FeedService, SmtpService
from pipeline.stack.service import Service, ServiceStatus

__all__ = ["REGISTRY", "SERVICES", "check_names", "down", "in_start_order", "service", "services",
           "status", "up"]

# Start order: a later service may need an earlier one (Airflow's tasks write to Elasticsearch).
REGISTRY: dict[str, type[Service]] = {
    cls.name: cls for cls in (ElasticsearchService, SmtpService, FeedService, AirflowService)}
SERVICES: tuple[str, ...] = tuple(REGISTRY)


def check_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SetupError(f"unknown services {sorted(unknown)}; choose from {list(SERVICES)}")


def in_start_order(names: list[str]) -> list[str]:
    return [name for name in SERVICES if name in names]


def service(settings: Settings, name: str) -> Service:
    check_names([name])
    return REGISTRY[name](settings)


def services(settings: Settings, names: list[str] | None = None) -> list[Service]:
    """The named services (all by default), in start order."""
    names = list(SERVICES) if names is None else names
    check_names(names)
    return [REGISTRY[name](settings) for name in in_start_order(names)]


def up(settings: Settings, names: list[str]) -> list[ServiceStatus]:
    """Start the named services in order (idempotent) and return their status."""
    chosen = services(settings, names)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    for svc in chosen:
        svc.start()
    return [svc.status() for svc in chosen]


def down(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Stop services (all by default) in reverse order; returns the ones that were running.

    Every service gets its stop attempt even when an earlier one fails; failures are raised
    together at the end so nothing is left running silently.
    """
    stopped: list[str] = []
    failures: list[str] = []
    for svc in reversed(services(settings, names)):
        try:
            if svc.stop():
                stopped.append(svc.name)
        except (OSError, SetupError) as exc:
            failures.append(f"{svc.name}: {exc}")
    if failures:
        raise SetupError("could not stop: " + "; ".join(failures))
    return stopped


def status(settings: Settings, names: list[str] | None = None) -> list[ServiceStatus]:
    return [svc.status() for svc in services(settings, names)]
