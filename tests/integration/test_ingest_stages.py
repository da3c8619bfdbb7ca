"""Every stage of the ingest DAG run by hand with the CLI, as an operator replays a run: the plan,
one poll per batch at a given time (``--now``), and the reconciliation of their reports; and the
page-text strategy chosen by ``NEWSWATCH_EXTRACTOR``."""

from __future__ import annotations

import json

from pipeline.cli import main
from pipeline.ingest.batches import plan_batches
from tests.ingest_support import NOW, OTHER_STORY, STORY, articles, page, rss


def write_sources(tmp_path, http_server, outlets):
    lines = ["defaults: {allow_private: true, timeout: 5}", "sources:"]
    lines += [f'  - {{id: {o}, name: {o} sample, url: "{http_server.url(f"/{o}.xml")}"}}' for o in outlets]
    path = tmp_path / "sources.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def route_feed(http_server, outlet, stories):
    items = [{"title": f"{outlet} story {i}", "link": http_server.url(f"/{outlet}/{i}"),
              "guid": f"{outlet}-{i}", "description": text, "pubDate": NOW} for i, text in enumerate(stories)]
    http_server.route(f"/{outlet}.xml", rss(items))


def test_plan_poll_and_reconcile_by_hand(settings, es, http_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    path = write_sources(tmp_path, http_server, ["wire", "paper", "blog"])
    route_feed(http_server, "wire", [STORY])
    route_feed(http_server, "paper", ["Sample Syndicate reporting. " + STORY])
    route_feed(http_server, "blog", [OTHER_STORY])

    assert main(["ingest", "--plan", "--batches", "2", "--sources-file", str(path)]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan == [["wire", "blog"], ["paper"]]
    assert plan == plan_batches(settings.with_overrides(sources_path=path), 2)  # the DAG's function

    reports = []
    for number, batch in enumerate(plan):
        args = ["ingest", "--once", "--sources-file", str(path), "--sources", ",".join(batch), "--no-pages",
                "--json", "--now", "2026-03-02T12:00:00"]
        assert main(args) == 0
        reports.append(tmp_path / f"report{number}.json")
        reports[-1].write_text(capsys.readouterr().out)
    stored = articles(es, settings)
    assert len(stored) == 3
    assert {a["fetched"] for a in stored} == {"2026-03-02T12:00:00.000Z"}  # the replayed run's time, not now
    copy = next(a for a in stored if a["source_id"] == "paper")
    original = next(a for a in stored if a["source_id"] == "wire")
    assert copy["duplicate_of"] == original["id"]  # the second poll saw the first one's article

    args = ["ingest", "--reconcile", "--now", "2026-03-02T12:00:00Z"]
    for report in reports:
        args += ["--report", str(report)]
    assert main(args) == 0
    totals = json.loads(capsys.readouterr().out)
    assert totals["sources_polled"] == 3 and totals["sources_failed"] == 0
    assert totals["new_articles"] == 2 and totals["duplicates"] == 1  # nothing left to reconcile
    assert sorted(totals["article_ids"]) == sorted(a["id"] for a in stored)


def test_reconcile_without_a_report_is_a_configuration_error(settings, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    assert main(["ingest", "--reconcile"]) == 2
    assert "--report" in capsys.readouterr().err


def test_the_extractor_comes_from_the_environment(settings, es, http_server, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    path = write_sources(tmp_path, http_server, ["wire"])
    teaser = "Sample data: a teaser of the bridge story."
    route_feed(http_server, "wire", [teaser])
    http_server.route("/wire/0", page("Bridge repair", STORY))

    monkeypatch.setenv("NEWSWATCH_EXTRACTOR", "feed")
    assert main(["ingest", "--once", "--sources-file", str(path), "--json"]) == 0
    capsys.readouterr()
    [article] = articles(es, settings)
    assert article["extraction"] == "feed_summary" and article["text"] == teaser
    assert not [h for h in http_server.hits if h.path == "/wire/0"]  # no page was fetched

    monkeypatch.setenv("NEWSWATCH_EXTRACTOR", "no-such-strategy")
    assert main(["ingest", "--once", "--sources-file", str(path)]) == 2
    assert "NEWSWATCH_EXTRACTOR" in capsys.readouterr().err
