"""Feed parsing to typed entries: plain text, absolute links, UTC dates, safe against entity bombs
and against feedparser fetching by itself."""

from __future__ import annotations

import random
import re
import time
from datetime import UTC, datetime

from pipeline.ingest.parse import _tidy, html_to_text, parse_feed

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_html_to_text():
    assert (
        html_to_text("<p>One &amp; two</p><p>three<br>four</p><script>x()</script>")
        == "One & two\nthree\nfour"
    )
    assert html_to_text("plain   text\n\n here") == "plain text\nhere"
    assert (
        html_to_text("&lt;p&gt;escaped &amp;amp; twice&lt;/p&gt;&lt;div&gt;b&lt;/div&gt;")
        == "escaped & twice\nb"
    )
    assert (
        html_to_text("talks about consecutive &lt;td&gt; elements") == "talks about consecutive <td> elements"
    )
    assert html_to_text("") == "" and html_to_text(None) == ""


def _reference_tidy(text: str) -> str:
    """The whitespace rules as plain regular expressions (the slower form ``_tidy`` replaces)."""
    text = re.sub(r"[ \t\r\f\v\u00a0]+", " ", text.replace("\u200b", ""))
    return re.sub(r"\s*\n\s*", "\n", text).strip()


def test_whitespace_tidying_matches_the_plain_rules():
    pieces = ["word", "b", " ", "  ", "\t", "\u00a0", "\n", "\r\n", "\n\n", " \n ", "\u2028", "\u3000",
              "\x0b", "\x1c", "\x85", "\u200b", "x\u200by", "\f"]
    rng = random.Random(5)
    for _ in range(20_000):
        text = "".join(rng.choices(pieces, k=rng.randint(0, 14)))
        assert _tidy(text) == _reference_tidy(text), repr(text)
    assert _tidy(" a \u00a0 b\t\n\n  c \u200b") == "a b\nc"


def test_entries_are_typed_plain_and_absolute():
    body = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel><title>Sample</title>
<link>https://sample.example/</link><language>pt-BR</language>
<lastBuildDate>Mon, 02 Mar 2026 09:00:00 -0300</lastBuildDate>
<item><title>Not&#237;cia &lt;b&gt;um&lt;/b&gt;</title><link>/noticias/1</link>
<guid isPermaLink="false">n1</guid>
<description>&lt;p&gt;Resumo com &lt;a href="/x"&gt;link&lt;/a&gt;.&lt;/p&gt;</description>
<pubDate>Mon, 02 Mar 2026 08:30:00 +0100</pubDate><dc:creator>Ana Sample</dc:creator>
<category>Mundo</category><category>Mundo</category></item>
<item><title>Sem data</title><link>https://other.example/2</link></item>
<item><title>Futuro</title><link>https://other.example/3</link>
<pubDate>Mon, 02 Mar 2099 08:30:00 GMT</pubDate></item>
</channel></rss>"""
    feed = parse_feed(body, url="https://sample.example/feeds/rss.xml", now=NOW)
    one, undated, future = feed.entries
    assert not feed.bozo, feed.bozo_message
    assert feed.language == "pt-BR"
    assert one.title == "Notícia um" and one.summary == "Resumo com link."
    assert one.link == "https://sample.example/noticias/1" and one.guid == "n1"
    assert one.published == datetime(2026, 3, 2, 7, 30, tzinfo=UTC) and not one.published_estimated
    assert one.authors == ("Ana Sample",) and one.tags == ("Mundo",) and one.language == "pt-BR"
    assert undated.published == datetime(2026, 3, 2, 12, 0, tzinfo=UTC) and undated.published_estimated
    assert future.published_estimated and future.published <= NOW
    assert len({e.entry_id for e in feed.entries}) == 3


def test_atom_xml_base_resolves_links():
    body = b"""<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example/blog/">
<title>t</title><entry xml:base="2026/"><title>x</title><link href="post.html"/><id>urn:x</id>
<updated>2026-03-01T10:00:00Z</updated></entry></feed>"""
    (entry,) = parse_feed(body, url="https://feeds.example/atom", now=NOW).entries
    assert entry.link == "https://a.example/blog/2026/post.html"


def test_entity_expansion_cannot_blow_up():
    levels = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    body = (
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY l0 "lol">{levels}]>'
        '<rss version="2.0"><channel><title>&l9;</title><item><title>&l9;</title>'
        "<link>https://e.example/1</link></item></channel></rss>"
    ).encode()
    started = time.perf_counter()
    feed = parse_feed(body, url="https://e.example/feed", now=NOW)
    assert time.perf_counter() - started < 5
    assert len(feed.title) < 1000 and all(len(e.title) < 1000 for e in feed.entries)


def test_a_body_that_is_a_url_is_not_fetched():
    started = time.perf_counter()
    feed = parse_feed(b"http://127.0.0.1:9/secret", url="https://e.example/feed", now=NOW)
    assert not feed.is_feed and feed.entries == [] and time.perf_counter() - started < 2


def test_html_page_is_not_a_feed():
    feed = parse_feed(
        b"<!doctype html><html><body><p>hello</p></body></html>",
        url="https://e.example/",
        headers={"content-type": "text/html"},
        now=NOW,
    )
    assert not feed.is_feed
