"""The scaled stack for tests and the scale benchmark: PostgreSQL, Redis, the Airflow API server,
scheduler, dag-processor and two Celery workers (queues io and cpu), each a service of the
registry's ``scale`` profile, on free ports, with a state folder of their own.

The state folder is made under the system temporary folder and opened to other users (0755):
PostgreSQL runs as an unprivileged user when the tests run as root, and must reach its data.
Everything started here is stopped, and the folder removed, on the way out.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo import SampleSet
from pipeline.errors import SetupError
from pipeline.es.schema import drop_prefix
from pipeline.settings import Settings
from pipeline.stack import registry
from pipeline.stack.airflow_celery import require_scale_extra, scale_processes
from pipeline.stack.feedserver import SampleFeedServer
from pipeline.stack.ports import free_port, port_is_free
from pipeline.stack.postgres import postgres_bin
from pipeline.stack.redis import redis_server
from pipeline.stack.service import Service
from pipeline.stack.smtp import MailCatcher
from tests.e2e.support import LocalStack, desk_settings, environment

AIRFLOW_SERVICES = ["postgres", "redis", "airflow-api", "airflow-scheduler", "airflow-dag-processor",
                    "worker-io", "worker-cpu"]


def require_scale_binaries() -> None:
    """Skip, naming what is missing, when this machine cannot run the scaled stack."""
    try:
        postgres_bin("initdb")
        postgres_bin("postgres")
        redis_server()
        require_scale_extra()
    except SetupError as exc:
        pytest.skip(f"scaled stack unavailable: {exc}")


def two_free_ports() -> int:
    """A free port whose successor is free too (the two workers' log servers)."""
    for _ in range(50):
        port = free_port()
        if port < 65535 and port_is_free(port + 1):
            return port
    raise RuntimeError("no two consecutive free ports")


def open_state_dir(prefix: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(0o755)
    return folder


class ScaledStack(LocalStack):
    """A :class:`LocalStack` whose Airflow is the scaled one; ``services`` by name."""

    services: dict[str, Service]

    def worker(self, queue: str) -> Service:
        return self.services[f"worker-{queue}"]


def scale_ports_env() -> dict[str, str]:
    return {"NEWSWATCH_AIRFLOW_PORT": str(free_port()), "NEWSWATCH_PG_PORT": str(free_port()),
            "NEWSWATCH_REDIS_PORT": str(free_port()), "NEWSWATCH_WORKER_LOG_PORT": str(two_free_ports())}


@contextmanager
def scaled_stack(base: Settings, es: Any, tmp: Path, sample: SampleSet, *,
                 schedule: str = "* * * * *", sources: Path | None = None, feed_port: int = 0,
                 env: dict[str, str] | None = None) -> Iterator[ScaledStack]:
    """Feeds, mail, and the scaled Airflow on free ports; stops everything on the way out.
    ``feed_port``: serve the sample feeds there (another run's port gives the same article ids)."""
    require_scale_binaries()
    feeds = SampleFeedServer(port=feed_port, sample=sample, dates="original").start()
    mail = MailCatcher(tmp / "mail", free_port()).start()
    state = open_state_dir("newswatch-scale-")
    prefix = f"test-scale-{uuid.uuid4().hex[:8]}"
    settings = desk_settings(base, tmp, feeds, mail, sorted({i.outlet for i in sample.items}),
                             prefix=prefix, state_dir=state, sources=sources)
    variables = {**scale_ports_env(), "NEWSWATCH_INGEST_SCHEDULE": schedule,
                 "NEWSWATCH_OPERATOR_EMAIL": "ops@example.org", "NEWSWATCH_RETRY_DELAY_SECONDS": "10",
                 "NEWSWATCH_TASK_HEARTBEAT_TIMEOUT": "30", "NEWSWATCH_TASK_QUEUED_TIMEOUT": "60",
                 **(env or {})}
    started: list[Service] = []
    with environment(variables):
        try:
            for svc in registry.services(settings, AIRFLOW_SERVICES):
                started.append(svc)
                svc.start()
            stack = ScaledStack(settings, es, mail, feeds, {})
            stack.services = {svc.name: svc for svc in started}
            yield stack
        finally:
            try:
                registry.down(settings, [svc.name for svc in started])
                left = scale_processes(settings)
                assert left == [], f"scaled Airflow processes left running: {left}"
            finally:
                mail.stop()
                feeds.stop()
                drop_prefix(es, prefix)
                shutil.rmtree(state, ignore_errors=True)
