"""Two failure cases of the writer (``_Run._write``), against the real Elasticsearch and a real
loopback feed: an article id created by someone else first (a concurrent run), and one article
that Elasticsearch refuses while the others of its feed are written."""

from __future__ import annotations

from datetime import timedelta

from pipeline.ingest.canonical import article_id, canonicalize_url
from tests.ingest_support import NOW, articles, feed_state, ingest_feeds_only, rss, sample_items, source
from tests.support import Response

ITEMS = sample_items("failures")
run = ingest_feeds_only


def rival_doc(aid: str, link: str) -> dict:
    """What another run (another outlet carrying the same URL) wrote for this id."""
    return {
        "id": aid,
        "url": link,
        "canonical_url": canonicalize_url(link),
        "links": [link],
        "guid_keys": ["rival|r-1"],
        "source_id": "rival",
        "outlet": "rival",
        "outlets": ["rival"],
        "title": "Rival title",
        "text": "Sample data: the rival run's text.",
        "status": "classified",  # a later stage already worked on it: must not be overwritten
        "on_topic": True,
    }


def test_an_id_created_by_a_concurrent_run_becomes_an_outlet_merge(settings, es, http_server, monkeypatch):
    from pipeline.es import bulk

    reports = []
    real_bulk_write = bulk.bulk_write

    def recording_bulk_write(*args, **kwargs):  # the real call; we only keep its report
        report = real_bulk_write(*args, **kwargs)
        reports.append((kwargs.get("op_type"), report))
        return report

    monkeypatch.setattr(bulk, "bulk_write", recording_bulk_write)
    link = ITEMS[1]["link"]
    aid = article_id(canonicalize_url(link))
    index = settings.index("articles")
    body = rss(ITEMS)

    def feed(_req):
        # The other run creates the article while ours is fetching the feed: after our run has
        # seen an empty index (so it does no lookup) and before its bulk create.
        if not http_server.hits[:-1]:
            es.create(index=index, id=aid, document=rival_doc(aid, link))
        return Response(body, headers={"Content-Type": "application/rss+xml"})

    src = source("ours", http_server.route("/race.xml", feed))
    report = run(settings, es, [src])
    result = report.feeds[0]
    assert result.status == "ok" and result.error is None, result.error
    assert (result.entries, result.new_articles, result.duplicates) == (3, 2, 1)
    assert aid not in result.article_ids and len(result.article_ids) == 2
    assert result.article_errors == []
    creates = [r for op, r in reports if op == "create"]
    assert [(r.created, r.conflicts) for r in creates] == [(2, 1)]  # the path under test: a 409
    stored = es.get(index=index, id=aid)["_source"]
    assert stored["outlets"] == ["rival", "ours"]  # merged, not overwritten
    assert (stored["title"], stored["status"], stored["source_id"]) == ("Rival title", "classified", "rival")
    assert "ours|failures-1" in stored["guid_keys"] and "rival|r-1" in stored["guid_keys"]
    assert len(articles(es, settings)) == 3
    state = feed_state(es, settings, "ours")
    assert state["last_status"] == "ok" and state["consecutive_failures"] == 0
    # Nothing is left over for the next poll: the same feed again is "unchanged", no new article.
    again = run(settings, es, [src], now=NOW + timedelta(minutes=10)).feeds[0]
    assert again.status == "unchanged" and again.new_articles == 0
    assert es.get(index=index, id=aid)["_source"]["outlets"] == ["rival", "ours"]


def test_an_id_already_in_the_index_before_the_poll_is_merged_not_created(settings, es, http_server):
    from pipeline.es.schema import ensure_indices

    link = ITEMS[0]["link"]
    aid = article_id(canonicalize_url(link))
    ensure_indices(es, settings, ["articles", "feeds"])
    es.create(index=settings.index("articles"), id=aid, document=rival_doc(aid, link), refresh=True)
    src = source("ours", http_server.route("/before.xml", rss(ITEMS)))
    result = run(settings, es, [src]).feeds[0]
    assert result.status == "ok" and (result.new_articles, result.duplicates) == (2, 1)
    stored = es.get(index=settings.index("articles"), id=aid)["_source"]
    assert stored["outlets"] == ["rival", "ours"] and stored["title"] == "Rival title"


def _etag_feed(body: bytes):
    def feed(req):
        if req.headers.get("If-None-Match") == '"v1"':
            return Response(b"", 304, {"ETag": '"v1"'})
        return Response(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    return feed


def test_a_40000_character_author_no_longer_costs_the_article(settings, es, http_server):
    """Feed-controlled keywords carry ignore_above: an over-long value stays in _source, unindexed,
    instead of Elasticsearch refusing the whole document (a term may not exceed 32766 bytes)."""
    huge = dict(ITEMS[2], author="Sample Author " + "x" * 40_000)
    src = source("long", http_server.route("/long.xml", _etag_feed(rss([ITEMS[0], ITEMS[1], huge]))))
    result = run(settings, es, [src]).feeds[0]
    assert result.status == "ok" and not result.article_errors, result.article_errors
    assert result.new_articles == 3
    stored = es.get(index=settings.index("articles"), id=article_id(canonicalize_url(huge["link"])))
    assert len(stored["_source"]["authors"][0]) > 40_000


def test_an_article_elasticsearch_refuses_is_kept_as_rejected_and_the_feed_moves_on(
        settings, es, http_server):
    """A refusal retrying cannot fix (400, e.g. a mapping conflict) must neither lose the entry nor
    hold the feed in error until it is disabled: the entry is kept as a ``rejected`` document with
    the original stored, and the feed state advances."""
    from dataclasses import replace

    from pipeline.es.schema import ARTICLES, ensure_indices

    # An articles index whose ``authors`` field is numeric (as if created by an older, wrong
    # mapping): a named author cannot go in, an entry without authors can.
    wrong = replace(ARTICLES, properties={**ARTICLES.properties, "authors": {"type": "long"}})
    ensure_indices(es, settings, kinds=["articles"], specs={"articles": wrong})
    named = dict(ITEMS[2], author="Sample Author")
    src = source("strict", http_server.route("/refuse.xml", _etag_feed(rss([ITEMS[0], ITEMS[1], named]))))
    bad_id = article_id(canonicalize_url(named["link"]))

    first = run(settings, es, [src]).feeds[0]
    assert first.status == "ok", first.error
    assert [(e["id"], e.get("kept_as")) for e in first.article_errors] == [(bad_id, "rejected")]
    assert "mapper_parsing_exception" in first.article_errors[0]["error"] or \
        "document_parsing_exception" in first.article_errors[0]["error"]
    assert first.new_articles == 2 and bad_id not in first.article_ids
    stub = es.get(index=settings.index("articles"), id=bad_id)["_source"]
    assert stub["status"] == "rejected" and stub["url"] == named["link"]
    assert "Sample Author" in stub["rejected_document"]["json"]
    assert stub["rejected_document"]["truncated"] is False
    state = feed_state(es, settings, "strict")
    assert state["etag"] == '"v1"' and state["consecutive_failures"] == 0  # advanced

    # Nothing is retried or written twice: the next poll is a conditional GET answered by a 304.
    second = run(settings, es, [src], now=NOW + timedelta(minutes=10)).feeds[0]
    assert second.status == "not_modified" and http_server.hits[-1].headers["if-none-match"] == '"v1"'
    assert len(articles(es, settings)) == 3


def test_every_refused_article_of_a_feed_is_marked_as_kept(settings, es, http_server):
    """Two refusals in one feed: each error entry says its own article was kept as rejected."""
    from dataclasses import replace

    from pipeline.es.schema import ARTICLES, ensure_indices

    wrong = replace(ARTICLES, properties={**ARTICLES.properties, "authors": {"type": "long"}})
    ensure_indices(es, settings, kinds=["articles"], specs={"articles": wrong})
    named = [dict(item, author="Sample Author") for item in ITEMS[1:]]
    src = source("two", http_server.route("/two.xml", _etag_feed(rss([ITEMS[0], *named]))))
    result = run(settings, es, [src]).feeds[0]
    assert result.status == "ok" and result.new_articles == 1
    assert sorted((e["id"], e.get("kept_as")) for e in result.article_errors) == sorted(
        (article_id(canonicalize_url(n["link"])), "rejected") for n in named)
