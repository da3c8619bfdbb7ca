"""The demo path: config/sources.local.yaml against the team's sample feed server, pages and all."""

from __future__ import annotations

from datetime import timedelta

from pipeline.ingest import ingest_once, load_sources
from pipeline.settings import DEFAULT_CONFIG_DIR
from pipeline.stack.feedserver import SampleFeedServer
from tests.ingest_support import NOW, articles


def test_sample_feeds_are_ingested_with_their_pages(settings, es):
    server = SampleFeedServer(port=0, initial=4, dates="original").start()
    try:
        sources = load_sources(
            DEFAULT_CONFIG_DIR / "sources.local.yaml", env={"NEWSWATCH_FEED_PORT": str(server.port)}
        )
        first = ingest_once(settings, es, sources=sources, now=NOW, ignore_schedule=True)
        assert first.sources_failed == 0 and first.sources_polled == 3
        assert first.new_articles + first.duplicates >= 1
        docs = articles(es, settings)
        assert docs and all(d["status"] == "extracted" and d["text"] for d in docs)
        assert any(d["extraction"] == "page" for d in docs)
        assert {d["outlet"] for d in docs} <= {"northwire", "capital-herald", "eastern-observer"}
        server.release(2)
        second = ingest_once(
            settings, es, sources=sources, now=NOW + timedelta(minutes=5), ignore_schedule=True
        )
        assert second.sources_failed == 0 and second.new_articles + second.duplicates >= 1
        third = ingest_once(
            settings, es, sources=sources, now=NOW + timedelta(minutes=10), ignore_schedule=True
        )
        assert third.new_articles == 0 and third.sources_failed == 0   # nothing new was released
    finally:
        server.stop()
