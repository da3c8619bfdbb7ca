"""Airflow 3 on this machine: ``airflow standalone`` with SQLite + LocalExecutor.

Everything lives under ``AIRFLOW_HOME = <state_dir>/airflow``: the metadata database, logs, the
generated admin password, ``standalone.pid``, ``standalone.log`` and ``tmp/`` (the ``TMPDIR`` of
every Airflow process, removed on stop). The settings reach the task processes as environment:
``AIRFLOW_CONN_ELASTICSEARCH_DEFAULT`` / ``AIRFLOW_CONN_SMTP_DEFAULT`` for the services (what
``plugins/`` reads at task run time) and ``NEWSWATCH_*`` for the rest.

Measured gotchas this module handles (see ``docs/environment.md`` in the shared docs):

* the first scheduled run fails if the scheduler queues it before the API server answers, so the
  DAGs stay paused (Airflow's default for new DAGs) until ``/api/v2/monitor/health`` is healthy
  and the DAG processor has registered them, and only then are they unpaused;
* the default parallelism pre-forks 32 workers (~1.4 GiB), so it is capped (2-4 on 2 cores);
* a plain SIGTERM leaves the scheduler and its workers running, so ``stop`` sends SIGINT to the
  whole process group (the server runs in its own session), then SIGTERM to the parent, then
  SIGKILL to whatever is left, including any process that still carries our ``AIRFLOW_HOME``.

This module never imports ``airflow``: it drives the ``airflow`` command of this interpreter.
``AIRFLOW_*`` variables of the calling environment are not passed on, so a shell set up for
another Airflow cannot point this one at a different home or database; tune this one with
``NEWSWATCH_AIRFLOW_PORT`` (default 8080) and ``NEWSWATCH_AIRFLOW_PARALLELISM`` (default 3).
The login: user ``admin``, password in ``AIRFLOW_HOME/simple_auth_manager_passwords.json.generated``
(see ``admin_login``; ``newswatch stack status`` prints both).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from pipeline.errors import SetupError
from pipeline.settings import REPO_ROOT, Settings
from pipeline.stack.ports import port_is_free
from pipeline.stack.processes import pid_alive, read_pid, tail, wait_for
from pipeline.stack.service import Service, ServiceStatus

DAGS_FOLDER = REPO_ROOT / "dags"
PLUGINS_FOLDER = REPO_ROOT / "plugins"
DAG_IDS = ("newswatch_ingest", "newswatch_classify", "newswatch_alerts", "newswatch_digest")
DEFAULT_PORT = 8080
DEFAULT_PARALLELISM = 3


def home(settings: Settings) -> Path:
    return settings.state_dir / "airflow"


def pid_file(settings: Settings) -> Path:
    return home(settings) / "standalone.pid"


def log_file(settings: Settings) -> Path:
    return home(settings) / "standalone.log"


def tmp_dir(settings: Settings) -> Path:
    """``TMPDIR`` of every Airflow process (bundles, task scratch files); removed by ``stop``."""
    return home(settings) / "tmp"


def api_port() -> int:
    return int(os.environ.get("NEWSWATCH_AIRFLOW_PORT", str(DEFAULT_PORT)))


def api_url(port: int | None = None) -> str:
    return f"http://127.0.0.1:{port or api_port()}"


def parallelism() -> int:
    """Worker slots: 2-4 is what two cores carry (each idle worker costs ~45 MiB)."""
    value = int(os.environ.get("NEWSWATCH_AIRFLOW_PARALLELISM", str(DEFAULT_PARALLELISM)))
    if not 1 <= value <= 16:
        raise SetupError(f"NEWSWATCH_AIRFLOW_PARALLELISM={value} is out of range 1-16 (2-4 fits 2 cores)")
    return value


def _es_connection(settings: Settings) -> str:
    from urllib.parse import urlparse

    cfg = settings.elasticsearch
    first, *others = [u.strip() for u in cfg.url.split(",") if u.strip()] or [cfg.url]
    url = urlparse(first)
    extra: dict[str, object] = {"verify_certs": cfg.verify_certs, "request_timeout": cfg.request_timeout}
    if others:  # a cluster: the connection's host is one node, extra.hosts the others
        extra["hosts"] = others
    if cfg.api_key:
        extra["api_key"] = cfg.api_key
    if cfg.ca_certs:
        extra["ca_certs"] = cfg.ca_certs
    return json.dumps({
        "conn_type": "elasticsearch", "host": url.hostname or "127.0.0.1",
        "port": url.port or (443 if url.scheme == "https" else 9200), "schema": url.scheme or "http",
        "login": cfg.username, "password": cfg.password, "extra": extra,
    })


def _smtp_connection(settings: Settings) -> str:
    cfg = settings.smtp
    # The provider's SmtpHook defaults to SSL and STARTTLS unless told otherwise.
    extra = {"disable_ssl": not cfg.ssl, "disable_tls": not cfg.starttls, "timeout": cfg.timeout,
             "from_email": cfg.sender}
    return json.dumps({"conn_type": "smtp", "host": cfg.host, "port": cfg.port,
                       "login": cfg.username, "password": cfg.password, "extra": extra})


def environment(settings: Settings, port: int | None = None, air_home: Path | None = None) -> dict[str, str]:
    """The environment of every Airflow process: Airflow config, connections and NEWSWATCH_*
    (``air_home``: another AIRFLOW_HOME, the scaled stack's)."""
    port = port or api_port()
    air_home = air_home or home(settings)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(air_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PLUGINS_FOLDER),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism()),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url(port)}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{air_home / 'airflow.db'}",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__BASE_URL": api_url(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__CATCHUP_BY_DEFAULT": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": os.environ.get("NEWSWATCH_AIRFLOW_LOG_LEVEL", "INFO"),
        "AIRFLOW_CONN_SMTP_DEFAULT": _smtp_connection(settings),
        "NEWSWATCH_INDEX_PREFIX": settings.index_prefix,
        "NEWSWATCH_CONFIG_DIR": str(settings.config_dir),
        "NEWSWATCH_STATE_DIR": str(settings.state_dir),
        "NEWSWATCH_KIBANA_URL": settings.kibana_url,
        "NEWSWATCH_ALLOW_PRIVATE_HOSTS": "true" if settings.allow_private_hosts else "false",
        "NEWSWATCH_ES_URL": settings.elasticsearch.url,
        "NEWSWATCH_SMTP_HOST": settings.smtp.host,
        "NEWSWATCH_SMTP_PORT": str(settings.smtp.port),
        "TMPDIR": str(tmp_dir(settings)),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        # standalone starts its components as `airflow ...` from PATH: this interpreter's first
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH")) if p),
    })
    secret = air_home / "jwt_secret"
    if secret.exists():  # one strong key shared by all components (the generated one is short)
        env["AIRFLOW__API_AUTH__JWT_SECRET"] = secret.read_text().strip()
    key = air_home / "feedback_key"
    if key.exists() and not env.get("NEWSWATCH_FEEDBACK_KEY"):
        # The local stack signs its emails' feedback links itself, and its own API server (the
        # plugin's endpoint) verifies them; a configured key and URL take precedence.
        env["NEWSWATCH_FEEDBACK_KEY"] = key.read_text().strip()
        env["NEWSWATCH_FEEDBACK_URL"] = f"{api_url(port)}/newswatch/feedback"
    env["AIRFLOW_CONN_ELASTICSEARCH_DEFAULT"] = _es_connection(settings)
    if settings.sources_path:
        env["NEWSWATCH_SOURCES_FILE"] = str(settings.sources_path)
    if settings.subscriptions_path:
        env["NEWSWATCH_SUBSCRIPTIONS_FILE"] = str(settings.subscriptions_path)
    return env


def _airflow_bin() -> str:
    candidate = Path(sys.executable).parent / "airflow"
    if not candidate.exists():
        raise SetupError(f"the airflow command is missing beside {sys.executable}; "
                         "install the project with `make install`")
    return str(candidate)


def _cli(settings: Settings, *args: str, port: int, timeout: float = 180) -> str:
    proc = subprocess.run([_airflow_bin(), *args], env=environment(settings, port), capture_output=True,
                          text=True, timeout=timeout, cwd=home(settings))
    if proc.returncode != 0:
        detail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise SetupError(f"`airflow {' '.join(args)}` failed (exit {proc.returncode}):\n{detail}")
    return proc.stdout


def health(port: int | None = None, timeout: float = 3.0) -> dict:
    """The API server's ``/api/v2/monitor/health`` document (no login needed)."""
    url = f"{api_url(port)}/api/v2/monitor/health"
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback, http only
        return json.loads(resp.read())


def _healthy(port: int, timeout: float = 3.0) -> bool:
    doc = health(port, timeout)
    parts = ("metadatabase", "scheduler", "dag_processor", "triggerer")
    return all(doc.get(p, {}).get("status") == "healthy" for p in parts if p in doc)


def _registered_dags(settings: Settings, port: int) -> set[str]:
    out = _cli(settings, "dags", "list", "-o", "json", port=port)
    for line in out.splitlines():  # warnings share stdout with the JSON document
        if line.startswith("[{") or line.strip() == "[]":
            return {row["dag_id"] for row in json.loads(line)}
    return set()


def _stale_pid_file(settings: Settings) -> None:
    path = pid_file(settings)
    if path.exists() and read_pid(path) is None:
        path.unlink(missing_ok=True)


def start(settings: Settings, *, timeout: float = 240.0) -> None:
    """Start Airflow (idempotent), wait for health and the DAGs, then unpause them."""
    port = api_port()
    air_home = home(settings)
    air_home.mkdir(parents=True, exist_ok=True)
    _stale_pid_file(settings)
    pid = read_pid(pid_file(settings))
    if pid and wait_for(lambda: _healthy(port), 5, 0.5):
        return
    if pid:
        stop(settings)
    if not port_is_free(port):
        raise SetupError(f"port {port} for the Airflow API server is already taken; stop what uses it "
                         f"(ss -ltnp 'sport = :{port}') or set NEWSWATCH_AIRFLOW_PORT to a free port")
    for folder in (DAGS_FOLDER, PLUGINS_FOLDER):
        if not folder.is_dir():
            raise SetupError(f"{folder} is missing: Airflow needs the project's dags/ and plugins/")
    for name in ("jwt_secret", "feedback_key"):
        secret = air_home / name
        if not secret.exists():
            secret.write_text(secrets.token_urlsafe(64 if name == "jwt_secret" else 32))
            secret.chmod(0o600)
    shutil.rmtree(tmp_dir(settings), ignore_errors=True)  # left by a run that was killed
    tmp_dir(settings).mkdir()
    _cli(settings, "db", "migrate", port=port, timeout=300)
    with log_file(settings).open("a") as log:
        log.write(f"\n--- newswatch: airflow standalone at {time.strftime('%FT%TZ', time.gmtime())}\n")
        log.flush()
        proc = subprocess.Popen([_airflow_bin(), "standalone"], env=environment(settings, port),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                cwd=air_home, start_new_session=True)
    pid_file(settings).write_text(str(proc.pid))
    try:
        if not wait_for(lambda: proc.poll() is not None or _healthy(port), timeout, 1.0) \
                or proc.poll() is not None:
            raise SetupError(f"Airflow did not become healthy within {timeout:.0f}s "
                             f"(log {log_file(settings)}):\n{tail(log_file(settings))}")
        expected = set(DAG_IDS)
        deadline = time.monotonic() + timeout
        while not expected <= (found := _registered_dags(settings, port)):
            if time.monotonic() > deadline or proc.poll() is not None:
                errors = _cli(settings, "dags", "list-import-errors", port=port)
                raise SetupError(f"the DAG processor did not register {sorted(expected - found)} "
                                 f"in time; import errors:\n{errors}")
            time.sleep(2)
        _cli(settings, "dags", "unpause", "-y", "--treat-dag-id-as-regex",
             "^(" + "|".join(DAG_IDS) + ")$", port=port)
    except BaseException:
        stop(settings)
        raise


def admin_login(settings: Settings, air_home: Path | None = None) -> tuple[str, str] | None:
    """The admin user and the password Airflow generated (None before first start); ``air_home``:
    another AIRFLOW_HOME, the scaled stack's."""
    path = (air_home or home(settings)) / "simple_auth_manager_passwords.json.generated"
    try:
        users = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    if "admin" in users:
        return "admin", str(users["admin"])
    return next(iter(users.items()), None)


def processes(settings: Settings, air_home: Path | None = None) -> list[int]:
    """Pids of every process whose environment carries our AIRFLOW_HOME (ours, by construction)."""
    marker = f"AIRFLOW_HOME={air_home or home(settings)}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker in env.split(b"\0"):
            found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    """True once ``pid`` has exited; reaps it when it is our child (a zombie still 'exists')."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not our child: its own parent reaps it
    if not pid_alive(pid):
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return not pid_alive(pid)


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)  # the server is its own session and group leader: pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def stop(settings: Settings, *, timeout: float = 20.0) -> bool:
    """Stop the server and everything it forked. True when something was running."""
    pid = read_pid(pid_file(settings))
    was_running = pid is not None
    if pid:
        _signal_group(pid, signal.SIGINT)
        if not wait_for(lambda: _gone(pid), timeout, 0.3):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            wait_for(lambda: _gone(pid), 10, 0.3)
        _signal_group(pid, signal.SIGKILL)
        wait_for(lambda: _gone(pid), 5, 0.2)
    leftovers = processes(settings)
    was_running = was_running or bool(leftovers)
    for child in leftovers:
        try:
            os.kill(child, signal.SIGTERM)
        except ProcessLookupError:
            pass
    if leftovers and not wait_for(lambda: not processes(settings), 10, 0.3):
        for child in processes(settings):
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                pass
        wait_for(lambda: not processes(settings), 10, 0.3)
    pid_file(settings).unlink(missing_ok=True)
    shutil.rmtree(tmp_dir(settings), ignore_errors=True)
    return was_running


def status(settings: Settings) -> ServiceStatus:
    """Whether our Airflow answers, with the UI URL and the admin login."""
    port = api_port()
    pid = read_pid(pid_file(settings))
    if not pid:
        return ServiceStatus("airflow", False, f"not running (AIRFLOW_HOME {home(settings)})")
    try:
        ok = _healthy(port, timeout=15.0)  # one API worker may be busy serving task calls
    except OSError:
        ok = False
    login = admin_login(settings)
    who = f", login {login[0]} / {login[1]}" if login else ""
    state = "" if ok else " (starting or unhealthy, see " + str(log_file(settings)) + ")"
    return ServiceStatus("airflow", ok, f"{api_url(port)}{who}{state}")


class AirflowService(Service):
    """``airflow standalone`` of this state folder (``AIRFLOW_HOME = <state_dir>/airflow``)."""

    name = "airflow"

    def url(self) -> str:
        return api_url()

    def pid_files(self) -> list[Path]:
        return [pid_file(self.settings)]

    def start(self) -> None:
        start(self.settings)

    def stop(self) -> bool:
        return stop(self.settings)

    def status(self) -> ServiceStatus:
        return status(self.settings)

    def demo_environment(self) -> dict[str, tuple[str, str]]:
        # the sample feed releases an item every 20 s; the production default polls every 5 min
        return {"NEWSWATCH_INGEST_SCHEDULE": ("* * * * *", "poll the feeds every minute")}

    def guide(self, started: bool) -> str | None:
        if not started:
            return None
        login = admin_login(self.settings)
        who = f"login {login[0]} / {login[1]}" if login else \
            f"login: see {home(self.settings) / 'simple_auth_manager_passwords.json.generated'}"
        return f"  Airflow UI     {self.url()}   {who}"
