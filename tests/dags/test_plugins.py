"""plugins/: settings from Airflow connections, the failure notifier, and the Kibana links plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipeline.errors import ConfigError
from pipeline.settings import Settings
from pipeline.stack import airflow as airflow_stack
from tests.dags.conftest import REPO


def _conn(uri_or_json: str, conn_id: str):
    from airflow.sdk import Connection

    if uri_or_json.lstrip().startswith("{"):
        return Connection.from_json(uri_or_json, conn_id=conn_id)
    return Connection.from_uri(uri_or_json, conn_id=conn_id)


def test_settings_come_from_the_connections_the_stack_exports(monkeypatch, tmp_path):
    """Round trip: the env the stack gives Airflow -> connections -> the same settings again."""
    from newswatch_airflow import settings_from_airflow

    source = Settings(index_prefix="roundtrip", state_dir=tmp_path)
    source = source.with_overrides(
        elasticsearch=source.elasticsearch.__class__(url="https://es.internal:9443", username="ops",
                                                     password="p@ss:word", verify_certs=False),
        smtp=source.smtp.__class__(host="mail.internal", port=2525, username="bot", password="s3cret",
                                   starttls=True, sender="News <news@example.org>"),
    )
    env = airflow_stack.environment(source, port=18080)
    for key in ("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", "AIRFLOW_CONN_SMTP_DEFAULT"):
        monkeypatch.setenv(key, env[key])
    got = settings_from_airflow(Settings(index_prefix="roundtrip"))
    assert got.elasticsearch.url == "https://es.internal:9443"
    assert (got.elasticsearch.username, got.elasticsearch.password) == ("ops", "p@ss:word")
    assert got.elasticsearch.verify_certs is False
    assert (got.smtp.host, got.smtp.port, got.smtp.username, got.smtp.password) == \
        ("mail.internal", 2525, "bot", "s3cret")
    assert got.smtp.starttls is True and got.smtp.ssl is False
    assert got.smtp.sender == "News <news@example.org>"
    assert got.index_prefix == "roundtrip"


def test_a_cluster_reaches_the_tasks_through_the_connection(monkeypatch, tmp_path):
    """Several nodes in NEWSWATCH_ES_URL: the exported connection carries them (host plus
    extra.hosts) and the tasks' settings list every node again."""
    from newswatch_airflow import settings_from_airflow

    nodes = "http://127.0.0.1:9200,http://127.0.0.1:9201,http://127.0.0.1:9202"
    source = Settings(index_prefix="cluster", state_dir=tmp_path)
    source = source.with_overrides(elasticsearch=source.elasticsearch.__class__(url=nodes))
    env = airflow_stack.environment(source, port=18080)
    conn = json.loads(env["AIRFLOW_CONN_ELASTICSEARCH_DEFAULT"])
    assert (conn["host"], conn["port"]) == ("127.0.0.1", 9200)
    assert conn["extra"]["hosts"] == ["http://127.0.0.1:9201", "http://127.0.0.1:9202"]
    monkeypatch.setenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", env["AIRFLOW_CONN_ELASTICSEARCH_DEFAULT"])
    monkeypatch.setenv("NEWSWATCH_ES_URL", "http://127.0.0.1:9333")  # the connection wins
    assert settings_from_airflow(Settings(index_prefix="cluster")).elasticsearch.url == nodes


def test_missing_connections_leave_the_environment_settings(monkeypatch):
    from newswatch_airflow import settings_from_airflow

    monkeypatch.delenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", raising=False)
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    monkeypatch.setenv("NEWSWATCH_ES_URL", "http://127.0.0.1:9333")
    monkeypatch.setenv("NEWSWATCH_SMTP_PORT", "2626")
    got = settings_from_airflow()
    assert got.elasticsearch.url == "http://127.0.0.1:9333"
    assert got.smtp.port == 2626


def test_elasticsearch_connection_fields_follow_the_provider():
    from newswatch_airflow.connections import elasticsearch_from_connection

    base = Settings().elasticsearch
    conn = _conn('{"conn_type": "elasticsearch", "host": "es.example.org", "port": 9243, "schema": "https",'
                 ' "extra": {"api_key": "abc==", "ca_certs": "/etc/ca.pem", "request_timeout": 5}}', "es")
    got = elasticsearch_from_connection(conn, base)
    assert got.url == "https://es.example.org:9243"
    assert (got.api_key, got.ca_certs, got.request_timeout) == ("abc==", "/etc/ca.pem", 5.0)
    assert elasticsearch_from_connection(_conn("elasticsearch://h", "es"), base).url == "http://h:9200"
    full = _conn('{"conn_type": "elasticsearch", "host": "http://10.0.0.5:9200/"}', "es")
    assert elasticsearch_from_connection(full, base).url == "http://10.0.0.5:9200"


@pytest.mark.parametrize(("spec", "field"), [
    ('{"conn_type": "elasticsearch", "host": "h", "schema": "ftp"}', "schema"),
    ('{"conn_type": "elasticsearch", "port": 9200}', "host"),
    ('{"conn_type": "elasticsearch", "host": "h", "extra": {"request_timeout": "soon"}}',
     "extra.request_timeout"),
])
def test_unusable_elasticsearch_connection_is_a_config_error_naming_it(spec, field):
    from newswatch_airflow.connections import elasticsearch_from_connection

    with pytest.raises(ConfigError) as info:
        elasticsearch_from_connection(_conn(spec, "my_es"), Settings().elasticsearch)
    assert info.value.item == "my_es" and info.value.field == field


def test_smtp_connection_defaults_are_the_providers():
    """The provider turns SSL on unless ``disable_ssl``: a bare connection means SMTPS on 465."""
    from newswatch_airflow.connections import smtp_from_connection

    got = smtp_from_connection(_conn('{"conn_type": "smtp", "host": "smtp.example.org"}', "smtp"),
                               Settings().smtp)
    assert (got.ssl, got.starttls, got.port) == (True, False, 465)
    local = ('{"conn_type": "smtp", "host": "127.0.0.1", "port": 8025,'
             ' "extra": {"disable_ssl": true, "disable_tls": true}}')
    plain = smtp_from_connection(_conn(local, "smtp"), Settings().smtp)
    assert (plain.ssl, plain.starttls, plain.port) == (False, False, 8025)
    assert plain.sender == Settings().smtp.sender


def test_kibana_links_come_from_the_saved_objects(tmp_path):
    from newswatch_airflow import kibana_links

    links = kibana_links("http://kibana.local:5601/")
    saved = [json.loads(line) for line in (REPO / "kibana" / "newswatch.ndjson").read_text().splitlines()
             if line.strip()]
    searches = [o for o in saved if o.get("type") == "search"]
    dashboards = [o for o in saved if o.get("type") == "dashboard"]
    assert len(links) == len(searches) + len(dashboards) and dashboards
    assert links[0]["href"] == f"http://kibana.local:5601/app/dashboards#/view/{dashboards[0]['id']}"
    assert {link["href"].rsplit("/", 1)[1] for link in links[len(dashboards):]} == {o["id"] for o in searches}
    assert all(link["destination"] == "nav" and link["category"] == "Kibana" for link in links)
    # without saved objects there is still a way to Kibana
    assert [link["href"] for link in kibana_links("http://k", tmp_path)] == ["http://k/app/dashboards"]


def test_airflow_loads_the_plugin_and_only_the_plugin_file():
    code = ("import json\n"
            "from airflow import plugins_manager as pm\n"
            "plugins, errors = pm._get_plugins()\n"
            "print(json.dumps({'names': [p.name for p in plugins], 'errors': errors,"
            " 'views': [v['name'] for p in plugins for v in p.external_views]}))\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert out["names"] == ["newswatch"]  # the package's modules are hidden by .airflowignore
    assert "Kibana: newswatch overview" in out["views"]


def test_failure_notifier_recipients_from_the_environment(monkeypatch):
    from newswatch_airflow import failure_notifier

    monkeypatch.setenv("NEWSWATCH_OPERATOR_EMAIL", "ops@example.org, oncall@example.org")
    notifier = failure_notifier()
    assert notifier.to == ["ops@example.org", "oncall@example.org"]
    assert notifier.smtp_conn_id == "smtp_default"
    assert notifier.subject.startswith("[newswatch] Airflow task failed")
    assert "{{ ti.task_id }}" in notifier.html_content and "{{ ti.log_url }}" in notifier.html_content


def test_run_time_is_a_plain_utc_datetime_from_the_logical_date_or_run_after():
    """Airflow's pendulum values break stdlib arithmetic in the pipeline; run_time converts them."""
    from datetime import UTC, datetime, timedelta
    from types import SimpleNamespace

    import pendulum
    from newswatch_airflow import run_time

    logical = pendulum.datetime(2026, 3, 2, 12, 0, tz="Europe/Berlin")
    got = run_time({"logical_date": logical, "dag_run": None})
    assert type(got) is datetime and got.tzinfo is UTC
    assert got == datetime(2026, 3, 2, 11, 0, tzinfo=UTC)
    assert (got + timedelta(hours=1)).tzinfo is UTC  # stays aware, unlike pendulum after astimezone
    after = pendulum.datetime(2026, 3, 3, 8, 30, tz="UTC")
    assert run_time({"logical_date": None, "dag_run": SimpleNamespace(run_after=after)}) == \
        datetime(2026, 3, 3, 8, 30, tzinfo=UTC)
