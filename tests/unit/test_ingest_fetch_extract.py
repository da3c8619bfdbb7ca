"""The SSRF guard on literal addresses (no DNS needed) and text extraction choices."""

from __future__ import annotations

import pytest

from pipeline.ingest.extract import choose_text
from pipeline.ingest.fetch import _Refused, check_address
from tests.ingest_support import OTHER_STORY, STORY, page


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/x",
        "http://10.0.0.8/",
        "http://192.168.1.1:8080/",
        "http://169.254.169.254/latest/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://0.0.0.0/",
        "http://100.64.0.1/",
        "http://[fe80::1]/",
        "http://[::ffff:7f00:1]/",  # IPv4-mapped, hex spelling
        "http://[64:ff9b::a00:1]/",  # NAT64 of 10.0.0.1
        "http://[2002:7f00:1::1]/",  # 6to4 of 127.0.0.1
    ],
)
def test_private_literals_are_refused(url):
    with pytest.raises(_Refused) as info:
        check_address(url, allow_private=False)
    assert info.value.kind == "blocked_address"
    check_address(url, allow_private=True)


@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "ftp://example.org/x", "gopher://x/", "http:///nohost", "http://example.org:99999/"],
)
def test_other_schemes_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(_Refused) as info:
        check_address(url, allow_private=True)
    assert info.value.kind == "invalid_url"


def test_public_literal_is_allowed():
    check_address("https://93.184.216.34/feed", allow_private=False)


def test_page_text_wins_over_a_teaser_and_comments_are_left_out():
    result = choose_text(
        title="Bridge",
        summary="Sample teaser.",
        content="",
        page_url="https://e.example/a",
        page_html=page("Bridge", STORY, canonical="https://e.example/a"),
    )
    assert (
        result.method == "page" and "temporary ferry" in result.text and "Reader comment" not in result.text
    )
    assert (
        result.canonical_url == "https://e.example/a"
        and result.page_language == "en"
        and result.error is None
    )


def test_paywall_stub_and_broken_page_fall_back_to_feed_text():
    stub = page(
        "Locked",
        "Sample data. Only a first line",
        extra="<div class='paywall'>Subscribe to continue reading</div>",
    )
    locked = choose_text(
        title="t", summary=OTHER_STORY, content="", page_html=stub, page_url="https://e.example/l"
    )
    assert locked.method == "feed_summary" and locked.paywalled and locked.text == OTHER_STORY
    broken = choose_text(
        title="t",
        summary="short",
        content=STORY,
        page_html=None,
        page_url=None,
        page_error="article page: timeout",
    )
    assert (
        broken.method == "feed_content" and broken.text == STORY and broken.error == "article page: timeout"
    )
    nothing = choose_text(
        title="Only a title",
        summary="",
        content="",
        page_html=b"<html></html>",
        page_url="https://e.example/",
    )
    assert (
        nothing.method == "title_only" and nothing.text == "Only a title" and "0 characters" in nothing.error
    )
