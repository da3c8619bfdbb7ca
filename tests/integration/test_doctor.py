"""``newswatch doctor`` against the real services of the test stack, and against closed ports."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from pipeline.cli import main
from pipeline.cli.doctor import FAIL, OK, WARN, _loader, run_checks
from pipeline.es.schema import ensure_indices
from pipeline.stack.elasticsearch import ES_VERSION
from pipeline.stack.ports import free_port


def _doctor(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["doctor", *args])
    out = capsys.readouterr().out
    return code, [line for line in out.splitlines() if line.strip()]


def _line(lines: list[str], name: str) -> str:
    found = [line for line in lines if line.split()[1:2] == [name]]
    assert len(found) == 1, lines
    return found[0]


def test_real_elasticsearch_and_smtp_are_ok(capsys, base_settings, es):
    code, lines = _doctor(capsys, "--only", "elasticsearch,smtp")
    es_line = _line(lines, "elasticsearch")
    assert es_line.startswith("OK") and ES_VERSION in es_line and base_settings.elasticsearch.url in es_line
    smtp_line = _line(lines, "smtp")
    assert smtp_line.startswith("OK") and f":{base_settings.smtp.port}" in smtp_line
    assert not any(line.startswith("FAIL") for line in lines)
    assert code == 0


def test_closed_ports_give_one_actionable_failure_line_each(capsys, monkeypatch):
    smtp_port, es_port = free_port(), free_port()
    monkeypatch.setenv("NEWSWATCH_SMTP_PORT", str(smtp_port))
    monkeypatch.setenv("NEWSWATCH_ES_URL", f"http://127.0.0.1:{es_port}")
    code, lines = _doctor(capsys, "--only", "elasticsearch,smtp")
    assert code == 1
    smtp_line = _line(lines, "smtp")
    assert smtp_line.startswith("FAIL") and f"127.0.0.1:{smtp_port}" in smtp_line
    assert "newswatch stack up --services smtp" in smtp_line
    es_line = _line(lines, "elasticsearch")
    assert es_line.startswith("FAIL") and f":{es_port}" in es_line
    assert "newswatch stack up --services elasticsearch" in es_line
    assert lines[-1] == "2 problem(s) found."


def test_missing_indices_warn_then_pass_once_created(settings, es):
    checks = {c.name: c for c in run_checks(settings, only=["elasticsearch"])}
    assert checks["elasticsearch"].status == OK
    assert checks["indices"].status == WARN and "newswatch es migrate" in checks["indices"].message
    ensure_indices(es, settings)
    checks = {c.name: c for c in run_checks(settings, only=["elasticsearch"])}
    assert checks["indices"].status == OK


def test_broken_config_names_the_file(tmp_path: Path, capsys, monkeypatch):
    (tmp_path / "taxonomy.yaml").write_text("motives: [unclosed\n", encoding="utf-8")
    monkeypatch.setenv("NEWSWATCH_CONFIG_DIR", str(tmp_path))
    code, lines = _doctor(capsys, "--only", "config")
    assert code == 1
    tax = _line(lines, "taxonomy")
    assert tax.startswith("FAIL") and str(tmp_path / "taxonomy.yaml") in tax
    assert _line(lines, "sample-feed").startswith("OK")


def test_model_files_are_found(base_settings):
    model, backend, multilingual = run_checks(base_settings, only=["model"])
    assert model.status == OK, model.message
    folder = model.message.split(" in ", 1)[1].split(": ", 1)[0]
    assert (Path(folder) / "config.json").exists()
    assert "model.safetensors" in model.message and "tokenizer.json" in model.message
    # which backend classification will use: the numpy reference, or the ONNX build and whether int8 is on
    assert backend.name == "classifier-backend"
    assert backend.message.split()[0].rstrip(";") in {"numpy", "onnx-fp32", "onnx-int8"}, backend.message
    # and whether items not in English get the multilingual model or the keyword gate only
    assert multilingual.name == "multilingual" and multilingual.status in {OK, WARN}, multilingual.message


def test_airflow_connections_from_the_environment(capsys, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT",
                       json.dumps({"conn_type": "elasticsearch", "host": "127.0.0.1"}))
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", "not a connection")
    code, lines = _doctor(capsys, "--only", "airflow", "--json")
    report = json.loads("\n".join(lines))
    by_name = {c["name"]: c for c in report["checks"]}
    assert by_name["airflow:elasticsearch_default"]["status"] == OK
    assert by_name["airflow:smtp_default"]["status"] == FAIL
    assert "AIRFLOW_CONN_SMTP_DEFAULT" in by_name["airflow:smtp_default"]["message"]
    assert code == 1 and report["ok"] is False


def test_airflow_connections_missing_from_an_airflow_home(tmp_path, capsys, monkeypatch):
    """With AIRFLOW_HOME set, doctor asks the airflow command itself (in a subprocess)."""
    monkeypatch.delenv("AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", "smtp://127.0.0.1:25")
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path / "airflow"))
    code, lines = _doctor(capsys, "--only", "airflow")
    line = _line(lines, "airflow:elasticsearch_default")
    assert line.startswith("FAIL") and "airflow connections add elasticsearch_default" in line
    assert _line(lines, "airflow:smtp_default").startswith("OK")
    assert code == 1


def test_a_part_not_built_yet_is_reported_not_crashed():
    assert _loader(("pipeline.no_such_module",), "load_things") is None
    assert _loader(("pipeline.settings",), "no_such_function") is None
    assert _loader(("pipeline.no_such_module", "pipeline.settings"), "load_settings") is not None


def test_unknown_check_name_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["doctor", "--only", "nonsense"])
    assert info.value.code == 2
    assert "unknown checks" in capsys.readouterr().err


def test_local_stack_connections_point_at_the_configured_services(base_settings, monkeypatch):
    for var in ("AIRFLOW_HOME", "AIRFLOW_CONN_ELASTICSEARCH_DEFAULT", "AIRFLOW_CONN_SMTP_DEFAULT"):
        monkeypatch.delenv(var, raising=False)
    checks = {c.name: c for c in run_checks(base_settings, only=["airflow"])}
    es_check, smtp_check = checks["airflow:elasticsearch_default"], checks["airflow:smtp_default"]
    es_url = urlparse(base_settings.elasticsearch.url)
    assert es_check.status == OK and f"elasticsearch {es_url.hostname}:{es_url.port}" in es_check.message
    smtp = base_settings.smtp
    assert smtp_check.status == OK and f"smtp {smtp.host}:{smtp.port}" in smtp_check.message
