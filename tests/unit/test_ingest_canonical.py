"""Canonical URLs and ids: tracking noise removed, redirect links unwrapped, real differences kept."""

from __future__ import annotations

import pytest

from pipeline.ingest.canonical import article_id, canonicalize_url, find_rel_canonical, resolve_redirect_link


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "HTTPS://WWW.Example.COM:443/a/b?utm_source=rss&utm_medium=x&id=7#comments",
            "https://www.example.com/a/b?id=7",
        ),
        (
            "http://example.com:8080//a//b?fbclid=1&gclid=2&page=2&mc_cid=3",
            "http://example.com:8080/a/b?page=2",
        ),
        ("https://example.com", "https://example.com/"),
        ("https://example.com/%7Euser/%e2%82%ac", "https://example.com/~user/%E2%82%AC"),
        ("https://example.com/?b=2&a=1", "https://example.com/?b=2&a=1"),  # order kept
        (
            "https://www.google.com/url?rct=j&sa=t&url=https://news.example.org/story?utm_source=ga&ct=ga",
            "https://news.example.org/story",
        ),
        (
            "http://www.bing.com/news/apiclick.aspx?ref=FexRss&aid=&tid=1&url=https%3a%2f%2fnews.example.org%2fa%2fb"
            "&c=1&mkt=en-us",
            "https://news.example.org/a/b",
        ),
        ("https://bücher.example/x", "https://xn--bcher-kva.example/x"),
        (  # Yahoo keeps the target in the path ("/RU=<escaped>/"), not in the query
            "https://r.search.yahoo.com/_ylt=AbC;_ylu=dEf/RV=2/RE=1772452800/RO=10/RU=https%3a%2f%2f"
            "news.example.org%2fa%3fid%3d1%26utm_medium%3drss/RK=2/RS=sample-",
            "https://news.example.org/a?id=1",
        ),
    ],
)
def test_canonicalize(raw, expected):
    assert canonicalize_url(raw) == expected


def test_relative_and_unwrappable_links():
    assert canonicalize_url("../b?utm_campaign=x", base="https://e.org/a/c/") == "https://e.org/a/b"
    opaque = "https://news.google.com/rss/articles/CBMiQWh0dHBzOi8v?oc=5"
    assert resolve_redirect_link(opaque) == opaque  # needs a fetch; left for the page fetch
    assert resolve_redirect_link("https://www.google.com/url?q=javascript:alert(1)").startswith(
        "https://www.google"
    )


def test_rel_canonical():
    html = (
        b"<html><head><meta charset=utf-8><LINK href='/story/1?x=a&amp;y=b' REL=\"canonical\">"
        b"</head><body><link rel=canonical href='https://evil.example/'></body></html>"
    )
    assert (
        find_rel_canonical(html, "https://news.example/amp/story/1") == "https://news.example/story/1?x=a&y=b"
    )
    assert find_rel_canonical(b"<html><head></head></html>", "https://a/") is None
    assert find_rel_canonical(b'<link rel="canonical" href="javascript:void(0)">', "https://a/") is None


def test_article_id_is_a_stable_hash_of_the_canonical_url():
    a = article_id(canonicalize_url("https://Example.com/x?utm_source=1"))
    assert a == article_id("https://example.com/x") and len(a) == 32
    assert a != article_id("https://example.com/y")
