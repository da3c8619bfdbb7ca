"""The replay feed server over real HTTP on 127.0.0.1: feeds, pages, release over time and on demand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import feedparser
import httpx
import pytest
import trafilatura

from pipeline.stack.feedserver import SampleFeedServer
from pipeline.stack.ports import free_port

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def feeds() -> Iterator[SampleFeedServer]:
    server = SampleFeedServer(port=0, interval=None, initial=0, dates="original").start()
    yield server
    server.stop()


def _wait(check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    return check()


def test_feeds_parse_and_carry_only_released_items(feeds):
    ids = feeds.release(5)
    assert ids == [i.id for i in feeds.sample.items[:5]]
    seen = []
    for outlet, info in feeds.sample.outlets.items():
        resp = httpx.get(feeds.feed_url(outlet))
        assert resp.status_code == 200
        assert resp.headers["content-type"].startswith("application/rss+xml")
        parsed = feedparser.parse(resp.content)
        assert not parsed.bozo, parsed.get("bozo_exception")
        assert parsed.version == "rss20"
        assert parsed.feed.title == info.name
        assert "sample data" in parsed.feed.description.lower()
        expected = [i for i in feeds.sample.items[:5] if i.outlet == outlet]
        assert sorted(e.title for e in parsed.entries) == sorted(i.title for i in expected)
        for entry in parsed.entries:
            assert entry.link.startswith(feeds.base_url + "/articles/")
            assert entry.published_parsed is not None and entry.author and entry.summary
            assert entry.id.startswith(f"{outlet}:")
        seen += parsed.entries
    assert len(seen) == 5
    combined = feedparser.parse(httpx.get(feeds.base_url + "/feed.xml").content)
    assert len(combined.entries) == 5
    assert httpx.get(feeds.base_url + "/feeds/unknown.xml").status_code == 404


def test_release_on_demand_over_http_and_status(feeds):
    first = httpx.get(feeds.base_url + "/release?n=2").json()
    assert first["released"] == [i.id for i in feeds.sample.items[:2]]
    assert first["remaining"] == len(feeds.sample.items) - 2
    second = httpx.post(feeds.base_url + "/release", params={"n": 1}).json()
    assert second["released"] == [feeds.sample.items[2].id]
    status = httpx.get(feeds.base_url + "/status").json()
    assert status["released"] == feeds.released() == [i.id for i in feeds.sample.items[:3]]
    assert status["sample_data"] is True
    assert set(status["outlets"]) == set(feeds.sample.outlets)
    assert httpx.get(feeds.base_url + "/release?n=lots").status_code == 400
    assert httpx.get(feeds.base_url + "/release?n=-1").status_code == 400
    rest = feeds.release(1000)
    assert len(rest) == len(feeds.sample.items) - 3
    assert feeds.release(1) == []  # the list ran out: nothing more, no error


def test_items_appear_over_time_without_being_asked():
    with SampleFeedServer(port=0, interval=0.1, initial=1) as server:
        assert len(server.released()) == 1
        assert _wait(lambda: len(server.released()) >= 3)
        entries = feedparser.parse(httpx.get(server.base_url + "/feed.xml").content).entries
        assert len(entries) >= 3
        # replay dates: newest first, every release strictly later than the one before
        times = [e.published_parsed for e in entries]
        assert times == sorted(times, reverse=True) and len(set(times)) == len(times)


def test_conditional_get_answers_304_until_something_new_is_released(feeds):
    feeds.release(1)
    url = feeds.feed_url("northwire")
    first = httpx.get(url)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    again = httpx.get(url, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(url, headers={"If-Modified-Since": modified}).status_code == 304
    assert httpx.get(url, headers={"If-None-Match": '"stale"'}).status_code == 200
    # a release for another outlet leaves this feed unchanged
    nxt = feeds.sample.items[1]
    assert nxt.outlet != "northwire"
    feeds.release(1)
    assert httpx.get(url, headers={"If-None-Match": etag}).status_code == 304
    # once northwire publishes again, the validators change
    while feeds.sample.items[len(feeds.released())].outlet != "northwire":
        feeds.release(1)
    feeds.release(1)
    changed = httpx.get(url, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_article_pages_extract_with_trafilatura(feeds):
    sample = feeds.sample
    first = sample.items[0]
    assert httpx.get(feeds.article_url(first.id)).status_code == 404  # not yet published
    feeds.release(len(sample.items))
    texts = {}
    for item in sample.items:
        resp = httpx.get(feeds.article_url(item.id))
        assert resp.status_code == 200
        text = trafilatura.extract(resp.text, include_comments=False, url=str(resp.url))
        assert text, item.id
        for paragraph in item.paragraphs:
            assert paragraph in text, (item.id, paragraph[:60])
        lowered = text.lower()
        assert "sample data" not in lowered and "cookies" not in lowered and "subscribe" not in lowered
        assert "sample data" in resp.text.lower()  # ... but the page footer says it
        meta = trafilatura.extract_metadata(resp.text)
        assert meta.title == item.title
        assert meta.date == item.published.date().isoformat()
        texts[item.id] = text
    for item in sample.items:
        if item.copy_of:  # a syndicated copy: same text, different URL and outlet
            assert texts[item.id] == texts[item.copy_of]
            assert feeds.article_url(item.id) != feeds.article_url(item.copy_of)


def test_feed_links_carry_tracking_but_pages_declare_a_clean_canonical(feeds):
    feeds.release(2)
    entry = feedparser.parse(httpx.get(feeds.feed_url("capital-herald")).content).entries[0]
    assert "utm_source=" in entry.link
    page = httpx.get(entry.link)
    assert page.status_code == 200
    canonical = entry.link.split("?")[0]
    assert f'<link rel="canonical" href="{canonical}">' in page.text


def test_command_line_server_serves_and_stops_on_sigterm(tmp_path):
    port = free_port()
    env = {**os.environ, "NEWSWATCH_FEED_INTERVAL": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "pipeline.stack.feedserver", "--port", str(port),
                             "--initial", "2"], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def status():
            try:
                return httpx.get(f"http://127.0.0.1:{port}/status", timeout=1).json()
            except httpx.TransportError:
                return None
        st = _wait(status)
        assert st and st["released_count"] == 2 and st["interval"] is None
        # a second server on the same port fails with a clear message, not a traceback
        clash = subprocess.run([sys.executable, "-m", "pipeline.stack.feedserver", "--port", str(port)],
                               cwd=REPO, capture_output=True, text=True, timeout=60)
        assert clash.returncode == 1
        assert f"cannot listen on 127.0.0.1:{port}" in clash.stdout
        assert "Traceback" not in clash.stdout + clash.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert "2 of" in out and "on demand only" in out

