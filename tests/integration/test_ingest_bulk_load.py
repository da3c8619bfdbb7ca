"""Big runs: batches written together, the articles index's refresh paused while a big run writes
and restored after (also after a failure, and when a killed run left the pause behind), and near
duplicates of articles that left the in-memory window still found while the refresh is paused."""

from __future__ import annotations

import random
from functools import partial

import pytest

from pipeline.errors import ServiceUnavailable
from pipeline.ingest import ingest_once
from pipeline.ingest import run as run_module
from pipeline.ingest.dedup import NearDuplicateIndex
from pipeline.ingest.writer import OrderedWriter
from tests.ingest_support import NOW, STORY, articles, feed_state, rss, source


def sample_text(seed: int, words: int = 80) -> str:
    """Random made-up words: sample data that no two seeds share enough of to look alike."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 8))) for _ in range(400)]
    return " ".join(rng.choices(vocab, k=words)) + "."


def feed(server, name: str, texts: list[str]) -> str:
    items = [
        {"title": f"{name} {i}", "link": server.url(f"/{name}/{i}"), "guid": f"{name}-{i}",
         "description": text, "pubDate": NOW}
        for i, text in enumerate(texts)
    ]
    return server.route(f"/{name}.xml", rss(items))


def refresh_interval(es, settings, kind: str = "articles") -> str | None:
    found = es.indices.get_settings(index=settings.index(kind), name="index.refresh_interval")
    return next(iter(found.values()))["settings"]["index"].get("refresh_interval")


def run(settings, es, sources, **kw):
    kw.update(now=NOW, ignore_schedule=True, fetch_articles=False)
    return ingest_once(settings, es, sources=sources, **kw)


def test_a_big_run_pauses_the_refresh_and_restores_it(settings, es, http_server, monkeypatch):
    monkeypatch.setattr(run_module, "BULK_LOAD_MIN_FEEDS", 2)
    monkeypatch.setattr(run_module, "BATCH_FEEDS", 1)  # several batches, so several writes
    sources = [source(f"s{i}", feed(http_server, f"s{i}", [sample_text(i)])) for i in range(4)]
    seen: list[str | None] = []
    kinds = ("articles", "feeds")
    report = run(settings, es, sources, workers=1,
                 progress=lambda *_: seen.extend(refresh_interval(es, settings, k) for k in kinds))
    assert report.new_articles == 4 and report.sources_ok == 4
    assert seen and set(seen) == {run_module.BULK_LOAD_REFRESH}  # both indices paused
    assert refresh_interval(es, settings) == "1s" and refresh_interval(es, settings, "feeds") == "1s"
    assert len(articles(es, settings)) == 4  # the run's final refresh made them searchable
    assert report.timings["batches"] >= 2 and 1 <= report.timings["write_groups"] <= report.timings["batches"]


def test_a_small_run_leaves_the_refresh_alone(settings, es, http_server):
    report = run(settings, es, [source("one", feed(http_server, "one", [sample_text(1)]))])
    assert report.new_articles == 1 and refresh_interval(es, settings) == "1s"


def test_a_pause_left_by_a_killed_run_is_replaced_by_the_template_value(
    settings, es, http_server, monkeypatch
):
    run(settings, es, [source("first", feed(http_server, "first", [sample_text(1)]))])
    es.indices.put_settings(index=f"{settings.index('articles')},{settings.index('feeds')}",
                            settings={"index": {"refresh_interval": run_module.BULK_LOAD_REFRESH}})
    monkeypatch.setattr(run_module, "BULK_LOAD_MIN_FEEDS", 1)
    report = run(settings, es, [source("second", feed(http_server, "second", [sample_text(2)]))])
    assert report.new_articles == 1 and refresh_interval(es, settings) == "1s"
    assert refresh_interval(es, settings, "feeds") == "1s"


def test_a_failed_write_restores_the_refresh_and_holds_the_states_back(
    settings, es, http_server, monkeypatch
):
    monkeypatch.setattr(run_module, "BULK_LOAD_MIN_FEEDS", 1)
    monkeypatch.setattr(run_module, "BATCH_FEEDS", 1)
    monkeypatch.setattr(run_module, "MAX_PENDING_DOCS", 0)  # one batch per write
    calls: list[str] = []
    real = OrderedWriter.write

    def failing_second_write(self, commits):
        calls.append(commits[0].poll.source.id)
        if len(calls) == 2:
            raise ServiceUnavailable("sample outage")
        return real(self, commits)

    monkeypatch.setattr(OrderedWriter, "write", failing_second_write)
    sources = [source(f"f{i}", feed(http_server, f"f{i}", [sample_text(10 + i)])) for i in range(3)]
    with pytest.raises(ServiceUnavailable):
        run(settings, es, sources, workers=1)
    assert refresh_interval(es, settings) == "1s" and refresh_interval(es, settings, "feeds") == "1s"
    es.indices.refresh(index=f"{settings.index('articles')},{settings.index('feeds')}")
    written = calls[0]
    assert feed_state(es, settings, written)["last_status"] == "ok"
    for sid in {s.id for s in sources} - {written}:  # the failed group, and any after it: no state
        assert not es.options(ignore_status=404).get(index=settings.index("feeds"), id=sid).get("found")
    assert {a["source_id"] for a in articles(es, settings)} == {written}


def test_a_copy_of_an_article_that_left_the_window_is_found_while_the_refresh_is_paused(
    settings, es, http_server, monkeypatch
):
    monkeypatch.setattr(run_module, "BULK_LOAD_MIN_FEEDS", 1)
    monkeypatch.setattr(run_module, "BATCH_FEEDS", 1)
    monkeypatch.setattr(run_module, "MAX_PENDING_DOCS", 0)  # each batch written before the next
    monkeypatch.setattr(run_module, "NearDuplicateIndex", partial(NearDuplicateIndex, keep=2))
    copy = "Sample Syndicate reporting. " + STORY.replace("on Monday", "on Monday morning")
    sources = [source("wire", feed(http_server, "wire", [STORY]))]
    sources += [source(f"other{i}", feed(http_server, f"other{i}", [sample_text(20 + i)])) for i in range(3)]
    sources.append(source("paper", feed(http_server, "paper", [copy])))
    report = run(settings, es, sources, workers=1)  # one at a time: the feeds are decided in order
    assert report.new_articles == 4 and sum(f.near_duplicates for f in report.feeds) == 1
    by_source = {a["source_id"]: a for a in articles(es, settings)}
    assert by_source["paper"]["duplicate_of"] == by_source["wire"]["id"]
    assert all("duplicate_of" not in by_source[s] for s in ("wire", "other0", "other1", "other2"))
    assert sorted(by_source["wire"]["outlets"]) == ["paper", "wire"]
