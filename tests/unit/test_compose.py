"""docker-compose.yml: what can be checked without a Docker engine.

It parses, its versions are the pinned ones, every long-running service has a healthcheck and is
waited on properly, and the ports and environment it publishes are the ones the README documents.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.stack.elasticsearch import ES_VERSION

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile"
ONE_SHOT = {"airflow-init", "setup"}
REQUIRED = {"elasticsearch", "kibana", "mailpit", "postgres", "airflow-init", "setup",
            "airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def readme() -> str:
    return (REPO / "README.md").read_text(encoding="utf-8")


def _airflow_pin() -> str:
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [pin] = [d for d in deps if re.fullmatch(r"apache-airflow==[\d.]+", d)]
    return pin.split("==")[1]


def _image_tag(service: dict) -> tuple[str, str]:
    name, _, tag = service["image"].rpartition(":")
    return name, tag


def test_the_file_parses_and_has_every_required_service(services):
    assert REQUIRED <= set(services)


def test_elasticsearch_and_kibana_are_the_pinned_version(services):
    assert _image_tag(services["elasticsearch"]) == ("docker.elastic.co/elasticsearch/elasticsearch",
                                                     ES_VERSION)
    assert _image_tag(services["kibana"]) == ("docker.elastic.co/kibana/kibana", ES_VERSION)


def test_airflow_is_the_version_pinned_in_pyproject_and_installed_with_constraints(services):
    pin = _airflow_pin()
    airflow = [s for name, s in services.items() if name.startswith("airflow-")]
    assert len(airflow) >= 5
    for service in airflow + [services["setup"]]:
        assert service["build"]["args"]["AIRFLOW_VERSION"] == pin
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert _image_tag(service)[1].endswith(f"airflow{pin}")
    dockerfile = DOCKERFILE.read_text()
    assert f"ARG AIRFLOW_VERSION={pin}" in dockerfile
    assert re.search(r"pip install -c constraints\.txt", dockerfile)
    assert "FROM python:3.11" in dockerfile


def test_every_long_running_service_has_a_healthcheck(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", name
            continue
        check = service.get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, name


def test_dependencies_wait_for_health_or_completion(services):
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions"
        for target, spec in depends.items():
            assert target in services, (name, target)
            condition = spec["condition"]
            if target in ONE_SHOT:
                assert condition == "service_completed_successfully", (name, target)
            else:
                assert condition == "service_healthy", (name, target)
    scheduler = services["airflow-scheduler"]["depends_on"]
    # the first scheduled run fails when the scheduler queues it before the API server answers
    assert scheduler["airflow-apiserver"]["condition"] == "service_healthy"
    for name in REQUIRED - ONE_SHOT - {"elasticsearch", "mailpit", "postgres"}:
        assert services[name].get("depends_on"), name


def test_airflow_uses_postgres_and_the_init_service_creates_the_connections(services):
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql")
    assert "@postgres:5432/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith("http://airflow-apiserver:8080")
    init_cmd = services["airflow-init"]["command"]
    script = REPO / init_cmd[0].replace("/opt/newswatch/", "")
    assert script.is_file() and os.access(script, os.X_OK)
    text = script.read_text()
    assert "airflow db migrate" in text
    for conn_id, host in (("elasticsearch_default", "elasticsearch"), ("smtp_default", "mailpit")):
        assert f"replace_connection {conn_id}" in text
        assert f'"host": "{host}"' in text


def test_setup_runs_commands_the_cli_really_has(services):
    command = " ".join(services["setup"]["command"])
    assert "newswatch es migrate" in command and "newswatch kibana import" in command
    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    assert {"es", "kibana"} <= set(sub.choices)


def test_dockerfile_copies_only_what_exists(services):
    for line in DOCKERFILE.read_text().splitlines():
        if line.startswith("COPY"):
            for src in line.split()[1:-1]:
                if not src.startswith("--"):
                    assert (REPO / src).exists(), src
    ignore = (REPO / "docker" / "Dockerfile.dockerignore").read_text().split()
    assert {".venv", ".cache", ".state"} <= set(ignore)


def _published_ports(services: dict) -> dict[str, list[int]]:
    out = {}
    for name, service in services.items():
        ports = [int(str(p).split(":")[0]) for p in service.get("ports", [])]
        if ports:
            out[name] = ports
    return out


def test_ports_agree_with_the_readme(services, readme):
    docker = readme.split("## Docker", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip().strip("`"): line for line in docker.splitlines()
            if line.startswith("| `")}
    published = _published_ports(services)
    assert published == {"elasticsearch": [9200], "kibana": [5601], "mailpit": [8025, 1025],
                         "airflow-apiserver": [8080]}
    for name, ports in published.items():
        assert name in rows, f"README's Docker table lacks {name}"
        cells = rows[name].split("|")[3]
        for port in ports:
            assert str(port) in cells, (name, port)
    for name in services:
        assert f"`{name}`" in docker, f"README's Docker section does not mention {name}"


def test_environment_agrees_with_the_readme(compose, services, readme):
    env = compose["x-newswatch-env"]
    names = {k for k in env if k.startswith("NEWSWATCH_")}
    assert {"NEWSWATCH_ES_URL", "NEWSWATCH_SMTP_HOST", "NEWSWATCH_SMTP_PORT"} <= names
    docker = readme.split("## Docker", 1)[1].split("\n## ", 1)[0]
    for name in names:
        assert name in docker, f"{name} is set by docker-compose.yml but not described in README"
    # the values the README states are the values the file sets
    assert f"NEWSWATCH_SMTP_PORT={env['NEWSWATCH_SMTP_PORT']}" in docker
    assert f"NEWSWATCH_ES_URL={env['NEWSWATCH_ES_URL']}" in docker
    assert f"NEWSWATCH_SMTP_HOST={env['NEWSWATCH_SMTP_HOST']}" in docker
    assert f"NEWSWATCH_FEED_PORT={env['NEWSWATCH_FEED_PORT']}" in docker
    # the SMTP service the containers use is mailpit's SMTP port
    assert env["NEWSWATCH_SMTP_HOST"] == "mailpit" and int(env["NEWSWATCH_SMTP_PORT"]) in \
        [int(str(p).split(":")[1].split()[0]) for p in services["mailpit"]["ports"]]
    for service in services.values():
        for key in service.get("environment") or {}:
            if key.startswith("NEWSWATCH_"):
                assert key in readme, key


SCALE = {"redis", "es01", "es02", "es03", "airflow-worker-io", "airflow-worker-cpu", "feeds-io"}


def test_the_scale_profile_adds_redis_three_es_nodes_and_two_workers(services):
    assert SCALE <= set(services)
    for name, service in services.items():
        if name in SCALE:
            assert service.get("profiles") == ["scale"], name
        else:
            assert not service.get("profiles"), f"{name} must run without a profile"
    name, tag = _image_tag(services["redis"])
    assert name == "redis" and re.fullmatch(r"\d+\.\d+(\.\d+)?", tag), "redis must be a pinned version"


def test_the_three_es_nodes_form_one_cluster_of_the_pinned_version(services):
    nodes = [services[n] for n in ("es01", "es02", "es03")]
    envs = [n["environment"] for n in nodes]
    assert [e["node.name"] for e in envs] == ["es01", "es02", "es03"]
    for node, env in zip(nodes, envs, strict=True):
        assert _image_tag(node) == ("docker.elastic.co/elasticsearch/elasticsearch", ES_VERSION)
        assert "discovery.type" not in env, "a cluster node cannot be single-node"
        assert env["cluster.name"] == envs[0]["cluster.name"]
        assert set(env["discovery.seed_hosts"].split(",")) == {"es01", "es02", "es03"}
        assert set(env["cluster.initial_master_nodes"].split(",")) == {"es01", "es02", "es03"}
        assert "wait_for_nodes=3" in node["healthcheck"]["test"][1]
    volumes = [n["volumes"][0].split(":")[0] for n in nodes]
    assert len(set(volumes)) == 3, "each node needs its own data volume"


def test_the_workers_serve_the_queues_the_dags_route_to(services):
    dags = (REPO / "dags" / "ingest.py").read_text() + (REPO / "dags" / "classify.py").read_text()
    assert 'queue="io"' in dags and 'queue="cpu"' in dags
    queues = {}
    for name in ("airflow-worker-io", "airflow-worker-cpu"):
        command = services[name]["command"]
        assert command[:3] == ["airflow", "celery", "worker"], name
        queues[name] = command[command.index("--queues") + 1].split(",")
        hostname = command[command.index("--celery-hostname") + 1].split("@")[0]
        assert f'{hostname}@' in services[name]["healthcheck"]["test"][1], f"{name} pings another worker"
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"
        assert services[name]["build"]["args"]["AIRFLOW_VERSION"] == _airflow_pin()
    assert queues == {"airflow-worker-io": ["io", "default"], "airflow-worker-cpu": ["cpu"]}


def test_celery_settings_point_at_the_profile_services(compose, services, readme):
    env = services["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__EXECUTOR"] == "${AIRFLOW_EXECUTOR:-LocalExecutor}"
    assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://redis:6379/0"
    assert "@postgres:5432/airflow" in env["AIRFLOW__CELERY__RESULT_BACKEND"]
    header = COMPOSE.read_text().split("x-newswatch-env", 1)[0]
    assert "AIRFLOW_EXECUTOR=CeleryExecutor" in header and "--profile scale" in header
    nodes = "http://es01:9200,http://es02:9200,http://es03:9200"
    for name in ("airflow-worker-io", "airflow-worker-cpu"):  # the tasks run there: every node
        assert services[name]["environment"]["NEWSWATCH_ES_URL"] == nodes
        assert services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] == env["AIRFLOW__CORE__EXECUTOR"]
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile scale up" in readme
