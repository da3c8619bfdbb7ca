"""Each HTTP misbehaviour gets its own clear per-source outcome, against a real loopback server
and the real Elasticsearch; failures are recorded in the feeds index with backoff."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace
from datetime import timedelta

import pytest

from pipeline.errors import ServiceUnavailable
from pipeline.ingest import ingest_once
from pipeline.ingest.state import parse_time
from tests.ingest_support import NOW, articles, feed_state, ingest_feeds_only, rss, sample_items, source
from tests.support import Response

ITEMS = sample_items("sample")
run = ingest_feeds_only


def test_etag_gets_a_304_and_no_parsing(settings, es, http_server):
    body = rss(ITEMS)

    def handler(req):
        if req.headers.get("If-None-Match") == '"v1"':
            return Response(b"", 304, {"ETag": '"v1"'})
        return Response(body, headers={"ETag": '"v1"', "Content-Type": "application/rss+xml"})

    src = source("etag", http_server.route("/etag.xml", handler))
    first = run(settings, es, [src]).feeds[0]
    assert (first.status, first.new_articles) == ("ok", 3)
    assert feed_state(es, settings, "etag")["etag"] == '"v1"'
    second = run(settings, es, [src], now=NOW + timedelta(minutes=11)).feeds[0]
    assert second.status == "not_modified" and second.parsed is False and second.new_articles == 0
    assert http_server.hits[-1].headers.get("if-none-match") == '"v1"'
    assert len(articles(es, settings)) == 3


def test_last_modified_is_sent_back(settings, es, http_server):
    stamp = "Mon, 02 Mar 2026 10:00:00 GMT"

    def handler(req):
        if req.headers.get("If-Modified-Since") == stamp:
            return Response(b"", 304)
        return Response(rss(ITEMS), headers={"Last-Modified": stamp})

    src = source("lastmod", http_server.route("/lm.xml", handler))
    assert run(settings, es, [src]).feeds[0].status == "ok"
    assert run(settings, es, [src]).feeds[0].status == "not_modified"
    assert http_server.hits[-1].headers["if-modified-since"] == stamp


def test_server_ignoring_validators_is_answered_by_the_body_hash(settings, es, http_server):
    src = source("ignorer", http_server.route("/ignore.xml", rss(ITEMS), headers={"ETag": '"x"'}))
    assert run(settings, es, [src]).feeds[0].new_articles == 3
    again = run(settings, es, [src]).feeds[0]
    assert again.status == "unchanged" and again.parsed is False and again.entries == 0
    assert http_server.hits[-1].headers.get("if-none-match") == '"x"'  # sent, and ignored
    state = feed_state(es, settings, "ignorer")
    assert state["last_status"] == "unchanged" and state["consecutive_failures"] == 0


def test_changed_feed_indexes_only_the_new_entry(settings, es, http_server):
    http_server.route("/grow.xml", rss(ITEMS))
    src = source("grow", http_server.url("/grow.xml"))
    assert run(settings, es, [src]).new_articles == 3
    extra = {
        "title": "Sample item 9",
        "link": "http://127.0.0.1/sample/9",
        "guid": "sample-9",
        "description": "Sample data: the newest one.",
        "pubDate": NOW,
    }
    http_server.route("/grow.xml", rss([extra, *ITEMS]))
    second = run(settings, es, [src]).feeds[0]
    assert (second.entries, second.new_articles, second.known) == (4, 1, 3)
    assert len(articles(es, settings)) == 4


@pytest.mark.parametrize(
    ("name", "response", "kind"),
    [
        ("status500", Response(b"oops", 500), "http_error"),
        (
            "htmlpage",
            Response(
                b"<!DOCTYPE html><html><head><title>Home</title></head><body><p>Welcome</p></body></html>",
                headers={"Content-Type": "text/html; charset=utf-8"},
            ),
            "not_a_feed",
        ),
        ("slow", Response(rss(ITEMS), delay=1.5), "timeout"),
        ("declared-huge", Response(b"", headers={"Content-Length": str(1 << 30)}), "too_large"),
    ],
)
def test_failures_are_recorded_with_backoff(settings, es, http_server, name, response, kind):
    src = source(name, http_server.route(f"/{name}.xml", response), timeout=0.5, poll_minutes=10)
    result = run(settings, es, [src]).feeds[0]
    assert (result.status, result.error_kind) == ("error", kind), result.error
    state = feed_state(es, settings, name)
    assert state["consecutive_failures"] == 1 and state["last_error"] and state["last_success"] is None
    assert parse_time(state["next_poll"]) == NOW + timedelta(minutes=10)
    run(settings, es, [src], now=NOW + timedelta(minutes=10))
    state = feed_state(es, settings, name)
    assert state["consecutive_failures"] == 2  # doubled: 20 minutes later
    assert parse_time(state["next_poll"]) == NOW + timedelta(minutes=30)
    skipped = ingest_once(settings, es, sources=[src], now=NOW + timedelta(minutes=11), fetch_articles=False)
    assert skipped.feeds[0].status == "not_due" and skipped.sources_polled == 0


def test_redirect_loop_and_redirect_cap(settings, es, http_server):
    http_server.route("/loop-a", Response(b"", 302, {"Location": "/loop-b"}))
    http_server.route("/loop-b", Response(b"", 301, {"Location": "/loop-a"}))
    for i in range(8):
        http_server.route(f"/hop{i}", Response(b"", 307, {"Location": f"/hop{i + 1}"}))
    http_server.route("/hop8", rss(ITEMS))
    http_server.route("/moved", Response(b"", 301, {"Location": "/final.xml"}))
    http_server.route("/final.xml", rss(ITEMS))
    report = run(
        settings,
        es,
        [
            source("loop", http_server.url("/loop-a")),
            source("hops", http_server.url("/hop0")),
            source("moved", http_server.url("/moved")),
        ],
    )
    by_id = {f.source_id: f for f in report.feeds}
    assert by_id["loop"].error_kind == "redirect_loop"
    assert by_id["hops"].error_kind == "too_many_redirects"
    assert by_id["moved"].status == "ok" and by_id["moved"].final_url.endswith("/final.xml")


class EndlessServer:
    """Sends a 200 with no Content-Length and then bytes until the client hangs up."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.port = self.sock.getsockname()[1]
        self.sent = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.sock.accept()
        conn.recv(65536)
        conn.sendall(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nConnection: close\r\n\r\n"
            b'<?xml version="1.0"?><rss version="2.0"><channel><title>big</title>'
        )
        chunk = b"<!-- padding -->" * 4096
        try:
            while self.sent < (1 << 30):
                conn.sendall(chunk)
                self.sent += len(chunk)
        except OSError:
            pass
        conn.close()
        self.sock.close()


def test_oversized_body_is_streamed_and_abandoned_at_the_cap(settings, es):
    server = EndlessServer()
    src = source("endless", f"http://127.0.0.1:{server.port}/feed.xml", max_bytes=2 * 1024 * 1024)
    result = run(settings, es, [src]).feeds[0]
    server.thread.join(10)
    assert (result.status, result.error_kind) == ("error", "too_large")
    assert server.sent < 64 * 1024 * 1024  # the 1 GiB body was never read


def test_private_address_is_refused_unless_allowed(settings, es, http_server):
    url = http_server.route("/private.xml", rss(ITEMS))
    strict = replace(settings, allow_private_hosts=False)
    refused = run(strict, es, [source("private", url, allow_private=False)]).feeds[0]
    assert (refused.status, refused.error_kind) == ("error", "blocked_address")
    assert "127.0.0.1" in refused.error and http_server.hits == []
    for target in (
        "http://10.1.2.3/feed.xml",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/feed",
    ):
        assert (
            run(strict, es, [source("private", target, allow_private=False)]).feeds[0].error_kind
            == "blocked_address"
        )
    allowed = run(strict, es, [source("private", url, allow_private=True)]).feeds[0]
    assert allowed.status == "ok" and allowed.new_articles == 3


def test_disabled_sources_are_reported_not_polled(settings, es, http_server):
    url = http_server.route("/off.xml", rss(ITEMS))
    report = run(settings, es, [source("off", url, enabled=False)])
    assert report.feeds[0].status == "disabled" and "sources file" in report.feeds[0].error
    assert http_server.hits == [] and report.as_dict()["sources_skipped"] == 1


def test_elasticsearch_down_fails_the_run_and_fetches_nothing(settings, http_server):
    from pipeline.es.client import build_client
    from pipeline.stack.ports import free_port

    url = http_server.route("/x.xml", rss(ITEMS))
    down = replace(
        settings,
        elasticsearch=replace(
            settings.elasticsearch, url=f"http://127.0.0.1:{free_port()}", request_timeout=2
        ),
    )
    with pytest.raises(ServiceUnavailable):
        ingest_once(down, build_client(down), sources=[source("x", url)], now=NOW)
    assert http_server.hits == []


def test_gzip_is_decoded_and_a_gzip_bomb_is_capped_after_decoding(settings, es, http_server):
    import gzip

    packed = gzip.compress(rss(ITEMS))
    http_server.route("/gz.xml", Response(packed, headers={"Content-Encoding": "gzip"}))
    bomb = gzip.compress(b"<!-- " + b"0" * (40 * 1024 * 1024) + b" -->")  # ~40 KB on the wire
    http_server.route("/bomb.xml", Response(bomb, headers={"Content-Encoding": "gzip"}))
    report = run(
        settings,
        es,
        [
            source("gz", http_server.url("/gz.xml")),
            source("bomb", http_server.url("/bomb.xml"), max_bytes=1024 * 1024),
        ],
    )
    by_id = {f.source_id: f for f in report.feeds}
    assert by_id["gz"].status == "ok" and by_id["gz"].new_articles == 3
    assert "gzip" in http_server.hits[0].headers.get("accept-encoding", "")
    assert (by_id["bomb"].status, by_id["bomb"].error_kind) == ("error", "too_large")


def test_per_host_concurrency_is_limited(settings, es, http_server):
    lock = threading.Lock()
    active, peak = [0], [0]

    def slow(req):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        import time

        time.sleep(0.3)
        with lock:
            active[0] -= 1
        return Response(rss(ITEMS[:1]))

    sources = [source(f"host{i}", http_server.route(f"/h{i}.xml", slow)) for i in range(10)]
    report = run(settings, es, sources, workers=10)
    assert report.sources_ok == 10
    assert peak[0] == 4  # Fetcher's per-host limit, although 10 workers were free


def test_redirect_to_a_file_url_is_refused(settings, es, http_server):
    http_server.route("/to-file", Response(b"", 302, {"Location": "file:///etc/passwd"}))
    to_file = run(settings, es, [source("to-file", http_server.url("/to-file"))]).feeds[0]
    assert to_file.error_kind == "invalid_url" and "file" in to_file.error
