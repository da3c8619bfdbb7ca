"""pipeline.stack.airflow without a running Airflow: its environment, login, status and errors.
(The real start/stop is exercised by tests/e2e, which starts the scheduler.)"""

from __future__ import annotations

import json
import socket
from dataclasses import replace

import pytest

from pipeline.errors import SetupError
from pipeline.settings import Settings
from pipeline.stack import airflow as airflow_stack


@pytest.fixture
def local(tmp_path) -> Settings:
    return Settings(index_prefix="nw-e", state_dir=tmp_path / "state", allow_private_hosts=True,
                    sources_path=tmp_path / "sources.yaml")


def test_environment_is_one_small_local_airflow(local, monkeypatch):
    monkeypatch.setenv("AIRFLOW_HOME", "/somewhere/else")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    monkeypatch.setenv("NEWSWATCH_AIRFLOW_PARALLELISM", "2")
    env = airflow_stack.environment(local, port=18123)
    home = local.state_dir / "airflow"
    assert env["AIRFLOW_HOME"] == str(home)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == f"sqlite:///{home / 'airflow.db'}"
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "True"  # unpaused after health
    assert env["AIRFLOW__CORE__DAGS_FOLDER"].endswith("/dags")
    assert env["AIRFLOW__CORE__PLUGINS_FOLDER"].endswith("/plugins")
    assert env["AIRFLOW__API__PORT"] == "18123" and env["AIRFLOW__API__HOST"] == "127.0.0.1"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://127.0.0.1:18123/execution/"
    assert env["NEWSWATCH_INDEX_PREFIX"] == "nw-e"
    assert env["NEWSWATCH_SOURCES_FILE"] == str(local.sources_path)
    assert env["NEWSWATCH_ALLOW_PRIVATE_HOSTS"] == "true"
    assert env["TMPDIR"] == str(home / "tmp")  # not the system's: removed again by stop
    es = json.loads(env["AIRFLOW_CONN_ELASTICSEARCH_DEFAULT"])
    assert (es["conn_type"], es["host"], es["port"], es["schema"]) == \
        ("elasticsearch", "127.0.0.1", 9200, "http")
    smtp = json.loads(env["AIRFLOW_CONN_SMTP_DEFAULT"])
    assert (smtp["host"], smtp["port"]) == ("127.0.0.1", 8025)
    assert smtp["extra"]["disable_ssl"] is True and smtp["extra"]["disable_tls"] is True


@pytest.mark.parametrize("value", ["0", "64"])
def test_parallelism_out_of_range_is_a_setup_error(monkeypatch, local, value):
    monkeypatch.setenv("NEWSWATCH_AIRFLOW_PARALLELISM", value)
    with pytest.raises(SetupError, match="NEWSWATCH_AIRFLOW_PARALLELISM"):
        airflow_stack.environment(local)


def test_a_taken_port_is_reported_before_anything_starts(local, monkeypatch):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        monkeypatch.setenv("NEWSWATCH_AIRFLOW_PORT", str(busy.getsockname()[1]))
        with pytest.raises(SetupError, match="already taken.*NEWSWATCH_AIRFLOW_PORT"):
            airflow_stack.start(local)
    assert not (local.state_dir / "airflow" / "airflow.db").exists()
    assert not airflow_stack.pid_file(local).exists()


def test_not_running_status_stop_and_login(local):
    assert airflow_stack.stop(local) is False
    status = airflow_stack.status(local)
    assert status.name == "airflow" and status.running is False and "not running" in status.detail
    assert airflow_stack.admin_login(local) is None
    home = local.state_dir / "airflow"
    home.mkdir(parents=True)
    (home / "simple_auth_manager_passwords.json.generated").write_text('{"admin": "s3cr3t"}')
    assert airflow_stack.admin_login(local) == ("admin", "s3cr3t")
    # a pid file left by a crashed run is stale, not a running Airflow
    airflow_stack.pid_file(local).write_text("999999999")
    assert airflow_stack.status(replace(local)).running is False


def test_stop_removes_the_temporary_files_a_killed_run_left(local):
    leftover = airflow_stack.tmp_dir(local) / "airflow" / "dag_bundles"
    leftover.mkdir(parents=True)
    (leftover / "scratch.txt").write_text("from a run that was killed")
    assert airflow_stack.stop(local) is False  # nothing was running
    assert not airflow_stack.tmp_dir(local).exists()
    assert (local.state_dir / "airflow").is_dir()  # only tmp/ goes: the database and logs stay
