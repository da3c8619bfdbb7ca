"""New entries become articles: page fetched and extracted on loopback, canonical URL and id,
exact and near duplicates across outlets, idempotent re-runs, state written after the articles."""

from __future__ import annotations

from datetime import timedelta

from pipeline.ingest import ingest_once
from pipeline.ingest.canonical import article_id
from tests.ingest_support import NOW, OTHER_STORY, STORY, articles, feed_state, page, rss, source
from tests.support import Response


def run(settings, es, sources, **kw):
    kw.setdefault("now", NOW)
    kw.setdefault("ignore_schedule", True)
    return ingest_once(settings, es, sources=sources, **kw)


def item(server, path, title, **kw):
    return {
        "title": title,
        "link": server.url(path),
        "guid": kw.pop("guid", path),
        "description": kw.pop("description", "Sample data: a one-line teaser."),
        "pubDate": NOW,
        **kw,
    }


def test_page_text_is_extracted_without_comments_and_canonical_sets_the_id(settings, es, http_server):
    canonical = http_server.url("/world/bridge-repair")
    http_server.route("/world/bridge-repair", page("Bridge repair", STORY))
    http_server.route("/r/bridge", page("Bridge repair", STORY, canonical=canonical))
    http_server.route("/museum", page("Map exhibition", OTHER_STORY))
    http_server.route(
        "/feed.xml",
        rss(
            [
                item(http_server, "/r/bridge?utm_source=rss&utm_medium=feed", "Bridge repair", guid="b1"),
                item(http_server, "/museum#top", "Map exhibition", guid="m1"),
            ]
        ),
    )
    report = run(settings, es, [source("herald", http_server.url("/feed.xml"), language="en")])
    assert report.new_articles == 2 and report.sources_ok == 1
    bridge = es.get(index=settings.index("articles"), id=article_id(canonical))["_source"]
    assert bridge["canonical_url"] == canonical and bridge["extraction"] == "page"
    assert "temporary ferry" in bridge["text"] and "Reader comment" not in bridge["text"]
    assert "Home" not in bridge["text"].split("\n")[0]
    assert bridge["status"] == "extracted" and bridge["language"] == "en" and bridge["outlets"] == ["herald"]
    museum = [a for a in articles(es, settings, source_id="herald") if a["extraction"] == "page"]
    assert {a["canonical_url"] for a in museum} == {canonical, http_server.url("/museum")}
    hits = [h for h in http_server.hits if h.path.startswith("/r/bridge")]
    assert hits and "newswatch" in hits[0].headers["user-agent"]


def test_running_twice_indexes_nothing_new(settings, es, http_server):
    http_server.route("/a", page("A", STORY))
    http_server.route("/b", page("B", OTHER_STORY))
    http_server.route("/feed.xml", rss([item(http_server, "/a", "A"), item(http_server, "/b", "B")]))
    src = source("twice", http_server.url("/feed.xml"))
    first = run(settings, es, [src])
    assert first.new_articles == 2
    before = {a["id"]: a for a in articles(es, settings)}
    # the server now also changes the feed's bytes (a new build date), so it is parsed again
    http_server.route(
        "/feed.xml",
        rss([item(http_server, "/a", "A"), item(http_server, "/b", "B")], title="Sample feed, rebuilt"),
    )
    second = run(settings, es, [src], now=NOW + timedelta(hours=1))
    assert second.feeds[0].status == "ok" and second.new_articles == 0 and second.feeds[0].known == 2
    assert {a["id"]: a for a in articles(es, settings)} == before
    assert sum(1 for h in http_server.hits if h.path in ("/a", "/b")) == 2  # pages fetched once


def test_crash_after_indexing_before_state_loses_nothing_and_doubles_nothing(settings, es, http_server):
    http_server.route("/a", page("A", STORY))
    http_server.route("/feed.xml", rss([item(http_server, "/a", "A")]))
    src = source("crashy", http_server.url("/feed.xml"))
    run(settings, es, [src])
    # simulate the crash: the articles are in, the feed state never got written
    es.delete(index=settings.index("feeds"), id="crashy", refresh=True)
    again = run(settings, es, [src])
    assert again.feeds[0].status == "ok" and again.new_articles == 0 and again.feeds[0].known == 1
    assert len(articles(es, settings)) == 1
    assert feed_state(es, settings, "crashy")["body_hash"]


def test_same_story_in_two_feeds_is_one_article_with_two_outlets(settings, es, http_server):
    http_server.route("/story", page("Bridge", STORY))
    http_server.route("/wire.xml", rss([item(http_server, "/story", "Bridge repair", guid="w-1")]))
    http_server.route(
        "/paper.xml", rss([item(http_server, "/story?utm_campaign=x&fbclid=abc", "Bridge", guid="p-77")])
    )
    report = run(
        settings,
        es,
        [source("wire", http_server.url("/wire.xml")), source("paper", http_server.url("/paper.xml"))],
    )
    assert report.new_articles == 1 and report.duplicates == 1
    docs = articles(es, settings)
    assert len(docs) == 1 and sorted(docs[0]["outlets"]) == ["paper", "wire"]
    assert {k.split("|")[0] for k in docs[0]["guid_keys"]} == {"wire", "paper"}
    assert sum(k.endswith(("w-1", "p-77")) for k in docs[0]["guid_keys"]) == 2
    again = run(
        settings,
        es,
        [source("wire", http_server.url("/wire.xml")), source("paper", http_server.url("/paper.xml"))],
        now=NOW + timedelta(hours=2),
    )
    assert again.new_articles == 0 and sorted(articles(es, settings)[0]["outlets"]) == ["paper", "wire"]


def test_near_duplicate_is_indexed_with_duplicate_of_and_syndicated(settings, es, http_server):
    copy = (
        "Sample Syndicate reporting. "
        + STORY.replace("on Monday", "on Monday morning")
        + " (Sample Syndicate)"
    )
    http_server.route("/original", page("Bridge", STORY))
    http_server.route("/copy", page("Bridge to reopen", copy))
    http_server.route("/unrelated", page("Maps", OTHER_STORY))
    http_server.route("/wire.xml", rss([item(http_server, "/original", "Bridge")]))
    http_server.route(
        "/paper.xml",
        rss([item(http_server, "/copy", "Bridge to reopen"), item(http_server, "/unrelated", "Maps")]),
    )
    wire = source("wire", http_server.url("/wire.xml"))
    run(settings, es, [wire])
    report = run(settings, es, [source("paper", http_server.url("/paper.xml"))], now=NOW + timedelta(hours=1))
    # the copy is indexed (with duplicate_of) but counted as a near duplicate, not a new story
    assert report.new_articles == 1 and report.feeds[0].near_duplicates == 1
    assert len(report.feeds[0].article_ids) == 2
    original = es.get(index=settings.index("articles"), id=article_id(http_server.url("/original")))[
        "_source"
    ]
    dup = es.get(index=settings.index("articles"), id=article_id(http_server.url("/copy")))["_source"]
    other = es.get(index=settings.index("articles"), id=article_id(http_server.url("/unrelated")))["_source"]
    assert dup["duplicate_of"] == original["id"] and "duplicate_of" not in other
    assert sorted(original["outlets"]) == ["paper", "wire"] and dup["outlets"] == ["paper"]


def test_failed_or_paywalled_pages_fall_back_to_the_feed_text(settings, es, http_server):
    stub = page(
        "Locked",
        "Sample data. Only the first lines are shown here",
        extra="<div class='paywall'>Subscribe to continue reading. Already a subscriber? Log in.</div>",
    )
    http_server.route("/locked", stub)
    http_server.route("/gone", Response(b"gone", 404))
    long_summary = "Sample data. " + OTHER_STORY
    http_server.route(
        "/feed.xml",
        rss(
            [
                item(http_server, "/locked", "Locked story", description=STORY),
                item(http_server, "/gone", "Missing page", description=long_summary),
            ]
        ),
    )
    report = run(settings, es, [source("stubs", http_server.url("/feed.xml"))])
    assert report.new_articles == 2 and report.feeds[0].status == "ok"
    assert len(report.feeds[0].article_errors) == 1 and "404" in report.feeds[0].article_errors[0]["error"]
    locked = es.get(index=settings.index("articles"), id=article_id(http_server.url("/locked")))["_source"]
    assert locked["paywalled"] is True and locked["extraction"] == "feed_summary"
    assert "temporary ferry" in locked["text"]
    gone = es.get(index=settings.index("articles"), id=article_id(http_server.url("/gone")))["_source"]
    assert gone["extraction"] == "feed_summary" and "404" in gone["error"] and "harbour" in gone["text"]


def test_a_news_search_wrapper_is_fetched_at_its_target_without_asking_the_search_engine(
        settings, es, http_server, monkeypatch):
    """The feed links to a search engine's click-through URL whose target is in the link: the
    page is fetched from the target directly (the search host is never even resolved)."""
    from urllib.parse import quote

    from pipeline.ingest import fetch as fetch_module
    from pipeline.ingest import run as run_module

    resolved: list[str] = []

    def loopback_only(host, port, *args, **kwargs):
        resolved.append(host)
        if host not in ("127.0.0.1", "localhost"):
            raise OSError(f"test: refusing to resolve {host}")
        return fetch_module.socket.getaddrinfo(host, port, *args, **kwargs)

    class LoopbackFetcher(fetch_module.Fetcher):
        def __init__(self, **kwargs):
            super().__init__(resolver=loopback_only, **kwargs)

    monkeypatch.setattr(run_module, "Fetcher", LoopbackFetcher)
    target = http_server.url("/world/bridge-repair")
    http_server.route("/world/bridge-repair", page("Bridge repair", STORY))
    wrapped = "https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&url=" + quote(target, safe="") + "&c=1"
    http_server.route("/feed.xml", rss([{"title": "Bridge repair", "link": wrapped, "guid": "w1",
                                         "description": "Sample data: a teaser.", "pubDate": NOW}]))
    report = run(settings, es, [source("wire", http_server.url("/feed.xml"), language="en")])
    assert report.new_articles == 1, report.feeds[0].error
    [article] = articles(es, settings)
    assert article["extraction"] == "page" and "temporary ferry" in article["text"]
    assert article["canonical_url"] == target and article["id"] == article_id(target)
    assert [h.path for h in http_server.hits if h.path.startswith("/world/")] == ["/world/bridge-repair"]
    assert resolved and set(resolved) <= {"127.0.0.1"}
