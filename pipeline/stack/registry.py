"""Which services the local stack has, in start order, and bringing them up and down.

Ports come from the settings (``NEWSWATCH_ES_URL``, ``NEWSWATCH_SMTP_PORT``,
``NEWSWATCH_FEED_PORT``, ``NEWSWATCH_AIRFLOW_PORT``); state (pids, data, logs, mail, temporary
files) lives under ``NEWSWATCH_STATE_DIR``. A new service is one :class:`Service` subclass added
to ``REGISTRY``: nothing here or in the commands names a service.

Two profiles choose the services: ``local`` (one machine: one Elasticsearch node, ``airflow
standalone`` on SQLite with the LocalExecutor) and ``scale`` (the same pipeline the way it runs
across machines: a three-node Elasticsearch cluster, PostgreSQL, Redis, and the Airflow API
server, scheduler, dag-processor and two Celery workers as separate services; the ports of the
extra services are ``NEWSWATCH_PG_PORT``, ``NEWSWATCH_REDIS_PORT``, ``NEWSWATCH_WORKER_LOG_PORT``
and ``NEWSWATCH_ES_TRANSPORT_PORT``).
"""

from __future__ import annotations

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack.airflow import AirflowService
from pipeline.stack.airflow_celery import (
    AirflowApiServer,
    AirflowDagProcessor,
    AirflowScheduler,
    CpuWorker,
    IoWorker,
)
from pipeline.stack.elasticsearch import ElasticsearchService
from pipeline.stack.es_cluster import ElasticsearchClusterService
from pipeline.stack.postgres import PostgresService
from pipeline.stack.python_services import FeedService, SmtpService
from pipeline.stack.redis import RedisService
from pipeline.stack.service import Service, ServiceStatus

__all__ = ["PROFILES", "REGISTRY", "SERVICES", "check_names", "down", "in_start_order", "service",
           "services", "status", "up"]

# Start order: a later service may need an earlier one (Airflow's tasks write to Elasticsearch,
# its components need the database and the broker, the workers the API server).
REGISTRY: dict[str, type[Service]] = {
    cls.name: cls for cls in (ElasticsearchService, ElasticsearchClusterService, SmtpService, FeedService,
                              PostgresService, RedisService, AirflowService, AirflowApiServer,
                              AirflowScheduler, AirflowDagProcessor, IoWorker, CpuWorker)}
PROFILES: dict[str, tuple[str, ...]] = {
    "local": ("elasticsearch", "smtp", "feeds", "airflow"),
    "scale": ("elasticsearch-cluster", "smtp", "feeds", "postgres", "redis", "airflow-api",
              "airflow-scheduler", "airflow-dag-processor", "worker-io", "worker-cpu"),
}
SERVICES: tuple[str, ...] = PROFILES["local"]


def check_names(names: list[str]) -> None:
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise SetupError(f"unknown services {sorted(unknown)}; choose from {list(REGISTRY)}")


def check_profile(profile: str) -> tuple[str, ...]:
    if profile not in PROFILES:
        raise SetupError(f"unknown profile {profile!r}; choose from {list(PROFILES)}")
    return PROFILES[profile]


def in_start_order(names: list[str]) -> list[str]:
    return [name for name in REGISTRY if name in names]


def service(settings: Settings, name: str) -> Service:
    check_names([name])
    return REGISTRY[name](settings)


def services(settings: Settings, names: list[str] | None = None, profile: str = "local") -> list[Service]:
    """The named services (those of ``profile`` by default), in start order."""
    names = list(check_profile(profile)) if names is None else names
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
    """Stop services (every registered one, of every profile, by default) in reverse order;
    returns the ones that were running.

    Every service gets its stop attempt even when an earlier one fails; failures are raised
    together at the end so nothing is left running silently.
    """
    stopped: list[str] = []
    failures: list[str] = []
    for svc in reversed(services(settings, list(REGISTRY) if names is None else names)):
        try:
            if svc.stop():
                stopped.append(svc.name)
        except (OSError, SetupError) as exc:
            failures.append(f"{svc.name}: {exc}")
    if failures:
        raise SetupError("could not stop: " + "; ".join(failures))
    return stopped


def status(settings: Settings, names: list[str] | None = None, profile: str = "local") -> list[ServiceStatus]:
    return [svc.status() for svc in services(settings, names, profile)]
