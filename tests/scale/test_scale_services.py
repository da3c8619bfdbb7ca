"""The scaled stack's services behind the registry's one interface: each in its own folder with its
own port, PostgreSQL and Redis started and stopped for real (their data kept, their temporary
files and processes gone), bad settings named before anything starts."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import replace

import pytest

from pipeline.errors import SetupError
from pipeline.stack import registry
from pipeline.stack.airflow_celery import scale_environment
from pipeline.stack.command_service import CommandService
from pipeline.stack.es_cluster import cluster_urls
from pipeline.stack.ports import free_port
from pipeline.stack.postgres import postgres_bin
from pipeline.stack.processes import pid_alive
from pipeline.stack.service import Service
from tests.e2e.support import environment
from tests.scale.support import open_state_dir, require_scale_binaries, scale_ports_env

pytestmark = pytest.mark.scale


@pytest.fixture
def scale_settings(base_settings):
    """Every port free (none of the shared test stack's), the state in a folder of its own."""
    state = open_state_dir("newswatch-scale-services-")
    with environment({**scale_ports_env(), "NEWSWATCH_FEED_PORT": str(free_port())}):
        yield replace(base_settings, state_dir=state, smtp=replace(base_settings.smtp, port=free_port()),
                      elasticsearch=replace(base_settings.elasticsearch, url=f"http://127.0.0.1:{free_port()}"))
    shutil.rmtree(state, ignore_errors=True)


def test_the_scale_profile_is_services_of_the_one_interface(scale_settings):
    found = registry.services(scale_settings, profile="scale")
    assert [s.name for s in found] == list(registry.PROFILES["scale"])
    assert [s.name for s in registry.services(scale_settings)] == list(registry.SERVICES)  # the default
    folders = set()
    for svc in found:
        assert isinstance(svc, Service)
        assert svc.folder == scale_settings.state_dir / svc.name
        folders.add(svc.folder)
        assert svc.status().running is False, svc.name
    assert len(folders) == len(found)
    ports = [p for svc in found if isinstance(svc, CommandService) for p in svc.ports()]
    assert len(ports) == len(set(ports)), f"two services share a port: {ports}"


def test_celery_settings_reach_every_airflow_process(scale_settings):
    env = scale_environment(scale_settings)
    assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow@127.0.0.1:")
    assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://127.0.0.1:")
    assert env["AIRFLOW_HOME"] == str(scale_settings.state_dir / "airflow-scale")
    assert env["AIRFLOW__CORE__PARALLELISM"] == "5"  # 4 io slots + 1 cpu slot


def test_cluster_urls_from_one_or_three(monkeypatch):
    assert cluster_urls("http://127.0.0.1:9200") == [f"http://127.0.0.1:{p}" for p in (9200, 9201, 9202)]
    three = "http://127.0.0.1:1,http://127.0.0.1:5,http://127.0.0.1:9"
    assert cluster_urls(three) == three.split(",")
    with pytest.raises(SetupError, match="lists 2 URLs"):
        cluster_urls("http://127.0.0.1:1,http://127.0.0.1:2")


def test_a_bad_port_is_named(scale_settings, monkeypatch):
    monkeypatch.setenv("NEWSWATCH_REDIS_PORT", "sixty")
    with pytest.raises(SetupError, match="NEWSWATCH_REDIS_PORT='sixty'"):
        registry.up(scale_settings, ["redis"])


def test_postgres_and_redis_start_answer_and_stop(scale_settings):
    require_scale_binaries()
    try:
        statuses = registry.up(scale_settings, ["postgres", "redis"])
        assert [(s.name, s.running) for s in statuses] == [("postgres", True), ("redis", True)]
        pg, redis = registry.services(scale_settings, ["postgres", "redis"])
        pids = pg.pids() | redis.pids()
        assert len(pids) == 2
        out = subprocess.run([str(postgres_bin("psql")), "-h", "127.0.0.1", "-p", str(pg.ports()[0]),
                              "-U", "airflow", "-d", "airflow", "-tAc", "SELECT current_database()"],
                             capture_output=True, text=True, check=True).stdout.strip()
        assert out == "airflow"
        assert registry.up(scale_settings, ["redis"])[0].running  # idempotent
        assert redis.pids() == pids - pg.pids()
    finally:
        stopped = registry.down(scale_settings, ["postgres", "redis"])
    assert stopped == ["redis", "postgres"]
    assert not any(pid_alive(p) for p in pids)
    assert (pg.folder / "data" / "PG_VERSION").exists(), "the database must survive a stop"
    assert not pg.tmp_dir.exists() and not redis.tmp_dir.exists()
