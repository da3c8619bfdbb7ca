"""Airflow 3 beyond one process: CeleryExecutor, PostgreSQL metadata, Redis broker, two workers.

The scaled stack runs each Airflow component as its own service (its own pid, log and ``tmp/``
under ``<state>/<name>``): the API server (which also migrates the database first), the
scheduler, the dag-processor and two Celery workers, one per queue:

* ``worker-io`` serves the ``io`` queue (feed polls and page fetches: waiting on the network, so
  ``NEWSWATCH_IO_CONCURRENCY`` slots, default 4) and ``default`` (everything unrouted: planning,
  reconciliation, alerts, digests);
* ``worker-cpu`` serves the ``cpu`` queue (classification and claim extraction: ONNX inference
  that uses every core it is given, so ``NEWSWATCH_CPU_CONCURRENCY`` slots, default 1).

They share one ``AIRFLOW_HOME = <state>/airflow-scale`` (generated secrets, task logs), apart
from the single-machine stack's ``<state>/airflow``, so stopping one never touches the other.
The components find each other through the settings alone: the metadata database
(``NEWSWATCH_PG_PORT``), the broker (``NEWSWATCH_REDIS_PORT``), the API server
(``NEWSWATCH_AIRFLOW_PORT``, also the Execution API the workers' tasks talk to) and each worker's
log server (``NEWSWATCH_WORKER_LOG_PORT``, the io worker's; the cpu worker takes the next one).

A worker that dies mid-task (SIGKILL, a lost machine) stops heartbeating; the scheduler fails that
try after ``NEWSWATCH_TASK_HEARTBEAT_TIMEOUT`` seconds (default 60; Airflow's default of 300 is
for big fleets) and Airflow retries it. The pipeline's tasks are idempotent, so the retry loses no
article and sends no email twice. A task message that a dead worker had taken but not started is
queued again after ``NEWSWATCH_TASK_QUEUED_TIMEOUT`` (default 120 s).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import ClassVar

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack import airflow
from pipeline.stack.command_service import CommandService, env_port
from pipeline.stack.postgres import pg_port, sqlalchemy_url
from pipeline.stack.redis import broker_url
from pipeline.stack.service import ServiceStatus

__all__ = ["AirflowApiServer", "AirflowDagProcessor", "AirflowScheduler", "CpuWorker", "IoWorker",
           "QUEUES", "admin_login", "health", "require_scale_extra", "scale_environment", "scale_home",
           "scale_processes"]

# The queue names are the DAG files' contract with the workers (see dags/*.py).
QUEUES = {"io": ("io", "default"), "cpu": ("cpu",)}
DEFAULT_WORKER_LOG_PORT = 8793


def scale_home(settings: Settings) -> Path:
    return settings.state_dir / "airflow-scale"


def _int_env(var: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(var, str(default))
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise SetupError(f"{var}={raw!r} must be a whole number from {low} to {high}")
    return value


def concurrency(queue: str) -> int:
    if queue == "io":
        return _int_env("NEWSWATCH_IO_CONCURRENCY", 4, 1, 64)
    return _int_env("NEWSWATCH_CPU_CONCURRENCY", 1, 1, 64)


def worker_log_port(queue: str) -> int:
    base = env_port("NEWSWATCH_WORKER_LOG_PORT", DEFAULT_WORKER_LOG_PORT)
    return base if queue == "io" else base + 1


def scale_environment(settings: Settings) -> dict[str, str]:
    """The single-machine Airflow environment, switched to Celery, PostgreSQL and Redis."""
    air_home = scale_home(settings)
    env = airflow.environment(settings, airflow.api_port(), air_home=air_home)
    db = sqlalchemy_url(pg_port())
    env.update({
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        # every slot of both workers may be busy at once
        "AIRFLOW__CORE__PARALLELISM": str(concurrency("io") + concurrency("cpu")),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db,
        "AIRFLOW__CELERY__BROKER_URL": broker_url(),
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + sqlalchemy_url(pg_port()),
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": "default",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT":
            str(_int_env("NEWSWATCH_TASK_HEARTBEAT_TIMEOUT", 60, 10, 3600)),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT":
            str(_int_env("NEWSWATCH_TASK_QUEUED_TIMEOUT", 120, 10, 3600)),
        "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10",
    })
    return env


def _ensure_secrets(air_home: Path) -> None:
    """One strong JWT key shared by every component (each would otherwise generate its own and
    reject the others' tokens) and the feedback-link key, created once."""
    air_home.mkdir(parents=True, exist_ok=True)
    for name, size in (("jwt_secret", 64), ("feedback_key", 32)):
        path = air_home / name
        if not path.exists():
            path.write_text(secrets.token_urlsafe(size))
            path.chmod(0o600)


def health(timeout: float = 3.0) -> dict:
    return airflow.health(airflow.api_port(), timeout)


def _component_healthy(part: str) -> bool:
    return health().get(part, {}).get("status") == "healthy"


def _airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    if not candidate.exists():
        raise SetupError(f"the airflow command is missing beside {sys.executable}; install the project")
    return str(candidate)


def _cli(settings: Settings, *args: str, timeout: float = 180) -> str:
    proc = subprocess.run([_airflow_bin(), *args], env=scale_environment(settings), capture_output=True,
                          text=True, timeout=timeout, cwd=scale_home(settings))
    if proc.returncode != 0:
        detail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SetupError(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}):\n{detail}")
    return proc.stdout


def require_scale_extra() -> None:
    """The `scale` extra, looked up without importing it (this package never imports Airflow)."""
    from importlib.metadata import PackageNotFoundError, version

    missing = []
    for dist in ("apache-airflow-providers-celery", "asyncpg", "psycopg2-binary", "redis"):
        try:
            version(dist)
        except PackageNotFoundError:
            missing.append(dist)
    if missing:
        raise SetupError(f"the scaled stack needs the `scale` extra ({', '.join(missing)} missing): "
                         "pip install -c constraints.txt -e '.[scale]'")


def admin_login(settings: Settings) -> tuple[str, str] | None:
    return airflow.admin_login(settings, air_home=scale_home(settings))


def scale_processes(settings: Settings) -> list[int]:
    """Every process carrying the scaled stack's AIRFLOW_HOME: what must be gone after a stop."""
    return airflow.processes(settings, air_home=scale_home(settings))


class AirflowComponent(CommandService):
    """One Airflow command of the scaled stack."""

    args: ClassVar[tuple[str, ...]]
    part: ClassVar[str]  # its entry in /api/v2/monitor/health
    start_timeout = 240.0

    def command(self) -> list[str]:
        return [_airflow_bin(), *self.args]

    def environment(self) -> dict[str, str]:
        return {**scale_environment(self.settings), "TMPDIR": str(self.tmp_dir)}

    def ready(self) -> bool:
        return _component_healthy(self.part)

    def url(self) -> str:
        return airflow.api_url()


class AirflowApiServer(AirflowComponent):
    """The API server and UI; migrates the metadata database before its first start."""

    name = "airflow-api"
    args = ("api-server",)
    part = "metadatabase"

    def ports(self) -> list[int]:
        return [airflow.api_port()]

    def prepare(self) -> None:
        require_scale_extra()
        for folder in (airflow.DAGS_FOLDER, airflow.PLUGINS_FOLDER):
            if not folder.is_dir():
                raise SetupError(f"{folder} is missing: Airflow needs the project's dags/ and plugins/")
        _ensure_secrets(scale_home(self.settings))
        _cli(self.settings, "db", "migrate", timeout=600)

    def guide(self, started: bool) -> str | None:
        if not started:
            return None
        login = admin_login(self.settings)
        who = f"login {login[0]} / {login[1]}" if login else "login: see " + str(
            scale_home(self.settings) / "simple_auth_manager_passwords.json.generated")
        return f"  Airflow UI     {self.url()}   {who}   (CeleryExecutor, PostgreSQL, Redis)"

    def demo_environment(self) -> dict[str, tuple[str, str]]:
        return {"NEWSWATCH_INGEST_SCHEDULE": ("* * * * *", "poll the feeds every minute")}


class AirflowScheduler(AirflowComponent):
    name = "airflow-scheduler"
    args = ("scheduler",)
    part = "scheduler"


class AirflowDagProcessor(AirflowComponent):
    """Parses the DAG files; its start waits until the DAGs are registered and unpauses them (new
    DAGs stay paused until then, so no run is scheduled against a half-started stack)."""

    name = "airflow-dag-processor"
    args = ("dag-processor",)
    part = "dag_processor"

    def _registered(self) -> set[str]:
        out = _cli(self.settings, "dags", "list", "-o", "json")
        for line in out.splitlines():  # warnings share stdout with the JSON document
            if line.startswith("[{") or line.strip() == "[]":
                return {row["dag_id"] for row in json.loads(line)}
        return set()

    def after_start(self) -> None:
        expected = set(airflow.DAG_IDS)
        deadline = time.monotonic() + self.start_timeout
        while not expected <= (found := self._registered()):
            if time.monotonic() > deadline:
                errors = _cli(self.settings, "dags", "list-import-errors")
                raise SetupError(f"the DAG processor did not register {sorted(expected - found)} in "
                                 f"time; import errors:\n{errors}")
            time.sleep(2)
        _cli(self.settings, "dags", "unpause", "-y", "--treat-dag-id-as-regex",
             "^(" + "|".join(airflow.DAG_IDS) + ")$")


class CeleryWorker(AirflowComponent):
    """``airflow celery worker`` for one queue set, with its own slots and log-server port."""

    queue: ClassVar[str]
    part = "scheduler"
    stop_timeout = 20.0  # a warm shutdown waits for running tasks; then they are killed and retried

    def ports(self) -> list[int]:
        return [worker_log_port(self.queue)]

    @property
    def hostname(self) -> str:
        return f"{self.queue}@{os.uname().nodename}"

    def command(self) -> list[str]:
        return [_airflow_bin(), "celery", "worker", "--queues", ",".join(QUEUES[self.queue]),
                "--concurrency", str(concurrency(self.queue)), "--celery-hostname", self.hostname,
                "--without-gossip", "--without-mingle"]

    def environment(self) -> dict[str, str]:
        return {**super().environment(),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(worker_log_port(self.queue))}

    def start(self) -> None:
        self._log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        super().start()

    def ready(self) -> bool:
        """Celery logs ``<hostname> ready.`` once it consumes from the broker."""
        with self.log_file.open("rb") as fh:
            fh.seek(getattr(self, "_log_start", 0))
            return f"{self.hostname} ready.".encode() in fh.read()

    def status(self) -> ServiceStatus:
        from pipeline.stack.processes import read_pid

        pid = read_pid(self.pid_file)
        return ServiceStatus(self.name, pid is not None,
                             f"queues {','.join(QUEUES[self.queue])}, {concurrency(self.queue)} slots"
                             + (f", pid {pid}" if pid else ""))

    def url(self) -> str:
        return f"{broker_url()} (queues {','.join(QUEUES[self.queue])})"


class IoWorker(CeleryWorker):
    name = "worker-io"
    queue = "io"


class CpuWorker(CeleryWorker):
    name = "worker-cpu"
    queue = "cpu"
