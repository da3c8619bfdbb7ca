"""``newswatch run``: the live summary read from the real Elasticsearch, start-up and clean stop."""

from __future__ import annotations

import socket
from datetime import datetime
from pathlib import Path

import pytest

from pipeline.cli import main
from pipeline.cli.run import Summary, format_summary, summary_counts
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices
from pipeline.stack.ports import free_port, port_is_free


def test_summary_counts_what_each_stage_wrote(es, settings, tmp_path):
    ensure_indices(es, settings)
    articles = [
        {"id": "a1", "on_topic": True, "classified_at": "2026-01-01T00:00:00Z", "status": "classified"},
        {"id": "a2", "on_topic": False, "classified_at": "2026-01-01T00:00:00Z", "status": "classified"},
        {"id": "a3", "duplicate_of": "a1", "status": "extracted"},
    ]
    bulk_write(es, settings.index("articles"), articles, id_field="id", refresh=True)
    claims = [{"id": "c1", "cluster_id": "k1"}, {"id": "c2", "cluster_id": "k1"}]
    bulk_write(es, settings.index("claims"), claims, id_field="id", refresh=True)
    bulk_write(es, settings.index("alerts"), [{"id": "x1", "status": "sent"}, {"id": "x2", "status": "sent"},
                                              {"id": "x3", "status": "pending"}], id_field="id", refresh=True)
    mail = settings.state_dir / "mail" / "new"
    mail.mkdir(parents=True)
    (mail / "1.eml").write_text("Subject: x\n\nbody\n")
    s = summary_counts(es, settings, feed_status={"released_count": 4, "total": 19})
    assert (s.articles, s.duplicates, s.on_topic, s.classified) == (3, 1, 1, 2)
    assert (s.claims, s.clusters, s.mails) == (2, 0, 1)
    assert s.alerts == {"sent": 2, "pending": 1}
    line = format_summary(s, datetime(2026, 1, 1, 12, 0, 5))
    assert line.startswith("12:00:05  feed 4/19 released | articles 3 (duplicates 1)")
    assert "alerts pending 1, sent 2" in line and "mails 1" in line


def test_summary_of_an_empty_installation_is_zero_not_an_error(es, settings):
    s = summary_counts(es, settings)  # no index exists under this prefix
    assert s == Summary(0, 0, 0, 0, 0, 0, {}, 0)
    assert "alerts none" in format_summary(s)


@pytest.fixture
def run_env(monkeypatch, tmp_path: Path, settings):
    """A private state folder and ports, and the test's index prefix, for a `newswatch run`."""
    ports = {"smtp": free_port(), "feeds": free_port()}
    monkeypatch.setenv("NEWSWATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("NEWSWATCH_SMTP_PORT", str(ports["smtp"]))
    monkeypatch.setenv("NEWSWATCH_FEED_PORT", str(ports["feeds"]))
    monkeypatch.setenv("NEWSWATCH_FEED_INTERVAL", "0.2")
    monkeypatch.setenv("NEWSWATCH_FEED_INITIAL", "1")
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    # `run` sets NEWSWATCH_SOURCES_FILE in os.environ; setenv first so monkeypatch restores it after
    monkeypatch.setenv("NEWSWATCH_SOURCES_FILE", "")
    monkeypatch.delenv("NEWSWATCH_SOURCES_FILE")
    return ports


def test_run_starts_prints_where_to_look_summarises_and_leaves_nothing_running(capsys, run_env, es,
                                                                                settings, tmp_path):
    code = main(["run", "--services", "smtp,feeds", "--duration", "2.5", "--refresh", "0.5"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert f"Sample feeds   http://127.0.0.1:{run_env['feeds']}/" in out
    assert str(tmp_path / "state" / "mail" / "new") in out
    assert "Elasticsearch  " in out and "Press Ctrl-C" in out
    assert "sources.local.yaml" in out  # the demo reads the sample feeds unless told otherwise
    summaries = [line for line in out.splitlines() if "| articles " in line]
    assert len(summaries) >= 2, out  # the first line, and the final one when --duration ends
    released = [int(line.split("feed ")[1].split("/")[0]) for line in summaries]
    # items appear over time: the final line (>= 2.5 s after start) shows more than the one
    # published at start, and the count never goes down
    assert released[-1] > 1 and released == sorted(released), out
    assert es.indices.exists_alias(name=settings.index("articles"))  # run created the indices
    assert "nothing is left running" in out
    for port in run_env.values():
        assert port_is_free(port)
    assert not list((tmp_path / "state").rglob("*.pid"))


def test_a_service_that_cannot_start_is_named_and_the_rest_is_stopped(capsys, run_env, tmp_path):
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", run_env["feeds"]))
    blocker.listen(1)
    try:
        code = main(["run", "--services", "smtp,feeds", "--duration", "1"])
    finally:
        blocker.close()
    captured = capsys.readouterr()
    assert code == 2  # could not be set up: see `newswatch --help`, exit codes
    assert "feeds failed to start" in captured.err
    assert f"port {run_env['feeds']}" in captured.err and "Traceback" not in captured.err
    assert port_is_free(run_env["smtp"])  # smtp had started; it was stopped again
    assert not list((tmp_path / "state").rglob("*.pid"))


def test_an_unusable_state_folder_is_a_clear_message(capsys, run_env, monkeypatch, tmp_path):
    not_a_folder = tmp_path / "state-file"
    not_a_folder.write_text("a file where the state folder should be")
    monkeypatch.setenv("NEWSWATCH_STATE_DIR", str(not_a_folder))
    code = main(["run", "--services", "smtp,feeds", "--duration", "1"])
    err = capsys.readouterr().err
    assert code == 2
    assert str(not_a_folder) in err and "NEWSWATCH_STATE_DIR" in err
    assert "Traceback" not in err
    assert port_is_free(run_env["smtp"]) and port_is_free(run_env["feeds"])


def test_unknown_service_is_a_usage_error(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--services", "kibana"])
    assert "unknown services" in capsys.readouterr().err
