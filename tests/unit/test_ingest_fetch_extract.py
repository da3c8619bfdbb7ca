"""The SSRF guard on literal addresses (no DNS needed) and text extraction choices."""

from __future__ import annotations

import pytest

from pipeline.ingest.addresses import Refused as _Refused
from pipeline.ingest.addresses import check_address
from pipeline.ingest.extract import choose_text
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


# -- bounded decompression and hostile feed text (pure functions) -------------------------------
def _decode_all(encoding: str, body: bytes, step: int = 4096) -> list[bytes]:
    from pipeline.ingest.fetch import BoundedDecoder

    decoder = BoundedDecoder(encoding)
    return [piece for i in range(0, len(body), step) for piece in decoder.decode(body[i : i + step])]


def test_gzip_deflate_and_identity_decode_to_the_original():
    import gzip
    import zlib

    text = STORY.encode() * 50
    assert b"".join(_decode_all("gzip", gzip.compress(text))) == text
    assert b"".join(_decode_all("x-gzip", gzip.compress(text))) == text
    assert b"".join(_decode_all("deflate", zlib.compress(text))) == text
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    assert b"".join(_decode_all("deflate", raw.compress(text) + raw.flush())) == text  # raw deflate
    assert b"".join(_decode_all("gzip, gzip", gzip.compress(gzip.compress(text)))) == text
    assert b"".join(_decode_all("", text)) == text and b"".join(_decode_all("identity", text)) == text


def test_a_bomb_decodes_in_pieces_no_bigger_than_a_chunk_and_only_as_far_as_asked():
    import gzip

    from pipeline.ingest.fetch import CHUNK, BoundedDecoder

    bomb = gzip.compress(gzip.compress(bytes(64 * 1024 * 1024)))  # a bomb inside a bomb: ~70 KB
    decoder = BoundedDecoder("gzip, gzip")
    taken = 0
    for piece in decoder.decode(bomb):
        assert len(piece) <= CHUNK
        taken += len(piece)
        if taken > 1024 * 1024:
            break  # the caller's cap: nothing more is inflated
    assert 1024 * 1024 < taken <= 1024 * 1024 + CHUNK


@pytest.mark.parametrize("encoding", ["br", "zstd", "compress", "gzip, br"])
def test_encodings_that_cannot_be_bounded_are_refused(encoding):
    from pipeline.ingest.fetch import BoundedDecoder

    with pytest.raises(_Refused) as info:
        BoundedDecoder(encoding)
    assert info.value.kind == "bad_encoding"
    assert encoding.split(", ")[-1] in str(info.value)  # names the encoding it cannot bound


def test_a_corrupt_gzip_body_is_a_decoding_error():
    with pytest.raises(_Refused) as info:
        _decode_all("gzip", b"\x1f\x8b\x08\x00" + b"not gzip at all" * 10)
    assert info.value.kind == "decoding_error"


def test_feed_links_no_client_can_parse_are_kept_and_surrogate_references_repaired():
    from datetime import UTC, datetime

    from pipeline.ingest.canonical import safe_canonicalize_url
    from pipeline.ingest.parse import parse_feed
    from tests.ingest_support import rss

    links = ["http://999.1.1.1/x", "http://0177.0.0.1/x", "http://[::1/x", "http://sample.invalid:99999/x"]
    items = [{"title": f"t{i}", "link": x, "guid": f"g{i}", "description": "d"} for i, x in enumerate(links)]
    feed = parse_feed(rss(items), url="http://127.0.0.1:1/feed", now=datetime.now(UTC))
    assert [e.link for e in feed.entries] == links  # kept: the page fetch says what is wrong
    assert [safe_canonicalize_url(x) for x in links[2:]] == links[2:]  # stable ids, no exception
    body = (
        b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><item><title>a &#xD800; '
        b"&#55296; b</title><guid>g&#xDC00;</guid><link>http://127.0.0.1/a</link></item></channel></rss>"
    )
    feed = parse_feed(body, url="http://127.0.0.1:1/feed", now=datetime.now(UTC))
    [entry] = feed.entries
    assert entry.title == "a \ufffd \ufffd b" and entry.guid == "g\ufffd"
    assert any("surrogates" in w for w in feed.warnings)
    (entry.title + entry.guid).encode("utf-8")  # no lone surrogate left to fail an encoder later
