"""News-search links unwrapped offline: Google News ids that carry the URL (fixtures built here from
URLs we write), opaque ids left for the fetch and flagged, Bing/Yahoo/DuckDuckGo click links, and
the real Google Alerts links of the corpus (read at run time)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from pipeline.ingest.canonical import (
    article_id,
    canonicalize_url,
    decode_google_news_id,
    is_unresolved_news_link,
    unwrap_news_link,
)

ARTICLE = "https://news.example.org/world/2026/03/02/bridge-repair?id=42&utm_source=google"


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def google_news_link(*fields: bytes, head: bytes = b"\x08\x13", path: str = "/rss/articles/") -> str:
    """A Google News article link whose id is base64url of ``head`` + field-4 strings (the first)
    and field-26 strings (the rest), the layout of the older, URL-carrying ids."""
    body = bytearray(head)
    for number, value in enumerate(fields):
        tag = (4 if number == 0 else 26) << 3 | 2
        body += _varint(tag) + _varint(len(value)) + value
    token = base64.urlsafe_b64encode(bytes(body)).decode().rstrip("=")
    return f"https://news.google.com{path}{token}?oc=5&hl=en-US&gl=US&ceid=US:en"


def test_a_google_news_id_carrying_the_url_is_decoded_offline():
    link = google_news_link(ARTICLE.encode(), b"https://news.example.org/amp/world/bridge-repair")
    unwrapped = unwrap_news_link(link)
    assert (unwrapped.url, unwrapped.wrapper, unwrapped.resolved) == (ARTICLE, "google_news", True)
    canonical = "https://news.example.org/world/2026/03/02/bridge-repair?id=42"
    assert canonicalize_url(link) == canonical
    assert article_id(canonicalize_url(link)) == article_id(canonicalize_url(ARTICLE))  # one story, one id
    assert not is_unresolved_news_link(link)


@pytest.mark.parametrize("path", ["/rss/articles/", "/articles/", "/read/", "/__i/rss/rd/articles/"])
@pytest.mark.parametrize("head", [b"\x08\x13", b"\x08\x02", b""])
def test_link_shapes_and_headers(path, head):
    assert unwrap_news_link(google_news_link(ARTICLE.encode(), head=head, path=path)).url == ARTICLE


def test_a_long_url_has_a_two_byte_length():
    long_url = "https://news.example.org/" + "section/" * 30 + "story.html"
    assert len(long_url) > 127
    assert unwrap_news_link(google_news_link(long_url.encode())).url == long_url


def test_a_non_ascii_url_decodes_as_utf8():
    url = "https://news.example.org/nachrichten/brücke"
    assert decode_google_news_id(google_news_link(url.encode()).split("/")[-1].split("?")[0]) == url


@pytest.mark.parametrize(
    "fields",
    [
        [b"AU_yqLOpaqueSampleIdentifierForTests0123456789"],  # the newer, opaque kind
        [b"javascript:alert(1)"],
        [b"https://"],  # no host
        [b"https://news.google.com/rss/articles/loop"],  # points back at Google News
        [b"http://bad host.example/x"],  # whitespace inside
    ],
)
def test_ids_without_a_usable_url_are_kept_and_flagged(fields):
    link = google_news_link(*fields)
    unwrapped = unwrap_news_link(link)
    assert unwrapped.url == link and unwrapped.resolved is False
    assert is_unresolved_news_link(link)
    assert canonicalize_url(link).startswith("https://news.google.com/rss/articles/")


def test_garbage_and_truncated_ids_are_kept():
    for token in ("%%%not-base64", "CBMiQWh0dHBzOi8v", "AAAA", ""):
        link = f"https://news.google.com/rss/articles/{token}?oc=5"
        assert unwrap_news_link(link).url == link
    assert decode_google_news_id("CBMiQWh0dHBzOi8v") is None  # length says 65, 8 bytes follow


def test_a_damaged_message_still_yields_a_url_found_in_clear():
    body = b"\x08\x13\xff\xff\xff" + ARTICLE.encode()  # not a valid message, URL in clear
    token = base64.urlsafe_b64encode(body).decode().rstrip("=")
    assert decode_google_news_id(token) == ARTICLE


@pytest.mark.parametrize(
    ("link", "target", "wrapper"),
    [
        (
            "https://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=9&url="
            + quote(ARTICLE, safe="")
            + "&c=5&mkt=en-us",
            ARTICLE,
            "bing",
        ),
        (
            "https://www.bing.com/ck/a?!&&p=0123abcd&ptn=3&u=a1"
            + base64.urlsafe_b64encode(ARTICLE.encode()).decode().rstrip("=")
            + "&ntb=1",
            ARTICLE,
            "bing",
        ),
        (
            "https://r.search.yahoo.com/_ylt=Sample;_ylu=Sample/RV=2/RE=1772452800/RO=10/RU="
            + quote(ARTICLE, safe="")
            + "/RK=2/RS=SampleSignature-",
            ARTICLE,
            "yahoo",
        ),
        ("https://duckduckgo.com/l/?uddg=" + quote(ARTICLE, safe="") + "&rut=abc", ARTICLE, "redirect"),
        ("https://www.google.co.uk/url?sa=t&url=" + quote(ARTICLE, safe=""), ARTICLE, "google"),
        ("https://news.google.com/url?url=" + quote(ARTICLE, safe=""), ARTICLE, "google_news"),
        # nested: a Google redirect wrapping a Google News id that carries the URL
        (
            "https://www.google.com/url?q=" + quote(google_news_link(ARTICLE.encode()), safe=""),
            ARTICLE,
            "google",
        ),
    ],
)
def test_search_click_links_are_unwrapped(link, target, wrapper):
    unwrapped = unwrap_news_link(link)
    assert (unwrapped.url, unwrapped.wrapper, unwrapped.resolved) == (target, wrapper, True)


@pytest.mark.parametrize(
    "link",
    [
        "https://www.bing.com/ck/a?u=a1" + base64.urlsafe_b64encode(b"javascript:alert(1)").decode(),
        "https://www.bing.com/news/apiclick.aspx?url=ftp%3A%2F%2Fnews.example.org%2F",
        "https://r.search.yahoo.com/_ylt=x/RU=javascript%3Aalert(1)/RK=2",
        "https://duckduckgo.com/l/?uddg=",
    ],
)
def test_wrappers_without_an_http_target_stay_and_are_flagged(link):
    assert unwrap_news_link(link).url == link and is_unresolved_news_link(link)


@pytest.mark.parametrize(
    "link",
    [
        "https://www.google.com/search?q=bridge",  # a search page, not a wrapper
        "https://news.example.org/url?url=https://elsewhere.example/",  # not a search host
        "https://www.bing.com/news/search?q=bridge",
        ARTICLE,
    ],
)
def test_other_links_are_not_wrappers(link):
    unwrapped = unwrap_news_link(link)
    assert unwrapped == unwrapped.__class__(link) and not is_unresolved_news_link(link)


def test_corpus_google_alerts_links_resolve_to_the_publishers(shared_dir):
    from pipeline.ingest.parse import parse_feed

    path = shared_dir / "corpus" / "feeds" / "feedjira_google_alerts.atom.xml"
    if not path.is_file():
        pytest.skip(f"{path} is absent from this copy of the corpus")
    feed = parse_feed(path.read_bytes(), url="https://www.google.com/alerts/feeds/x", now=datetime.now(UTC))
    wrapped = [e.link for e in feed.entries if e.link and urlsplit(e.link).path == "/url"]
    assert len(wrapped) >= 10, "the Google Alerts sample should carry google.com/url links"
    for link in wrapped:
        expected = parse_qs(urlsplit(link).query)["url"][0]
        canonical = canonicalize_url(link)
        assert urlsplit(canonical).hostname == urlsplit(expected).hostname.lower()
        assert "google." not in (urlsplit(canonical).hostname or "") and not is_unresolved_news_link(link)
        assert unwrap_news_link(link).wrapper == "google"
