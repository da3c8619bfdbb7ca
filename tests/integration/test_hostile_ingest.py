"""Hostile input against the real fetcher and a real ingest pass (Elasticsearch, a hostile server
on 127.0.0.1): malformed links and redirects, servers trickling one byte a second in headers and
bodies, gzip bombs as feeds and pages, an endless stream, entity expansion, HTML for XML.

What must hold: every fetch ends with an error result (never an exception), within its deadline
and its size cap; one ingest pass with every hostile source beside a healthy one completes, the
healthy source's articles are all indexed, each hostile entry is kept with the feed's text and its
error, each hostile feed's failure is recorded in the report and its state, and a second pass
neither crashes nor duplicates anything.
"""

from __future__ import annotations

import time
import tracemalloc
from datetime import timedelta
from urllib.parse import quote

import pytest

from pipeline.ingest.fetch import Fetcher
from tests.hostile_server import BAD_LINKS, HostileServer, install_cases
from tests.ingest_support import NOW, articles, feed_state, source

TIMEOUT = 2.0  # per wait; the whole request's deadline is three times this (fetch.DEADLINE_FACTOR)
NOT_HUNG = 20.0  # generous: only proves a request did not run to the end of a 120 s trickle
FEED_CAP = 2 * 1024 * 1024  # above the bomb's ~1 MB on the wire: the cap must trip while inflating


@pytest.fixture(scope="module")
def hostile():
    server = HostileServer(trickle_seconds=120).start()
    cases = install_cases(server)
    yield server, cases
    server.stop()


@pytest.fixture(scope="module")
def fetcher():
    with Fetcher(user_agent="newswatch-test") as f:
        yield f


def get(fetcher: Fetcher, url: str, *, max_bytes: int = 5 * 1024 * 1024, allow_private: bool = True):
    return fetcher.get(url, allow_private=allow_private, timeout=TIMEOUT, max_bytes=max_bytes)


# -- the fetcher alone -------------------------------------------------------------------------
@pytest.mark.parametrize("allow_private", [False, True])
@pytest.mark.parametrize("link", BAD_LINKS)
def test_a_malformed_url_is_an_invalid_url_result_naming_it(fetcher, link, allow_private):
    result = get(fetcher, link, allow_private=allow_private)
    assert (result.error_kind, result.body) == ("invalid_url", None)
    assert repr(link) in (result.error or "")


@pytest.mark.parametrize("link", BAD_LINKS)
def test_a_redirect_to_a_malformed_url_is_an_invalid_url_result(fetcher, hostile, link):
    server, _ = hostile
    start = server.url("/redirect?to=" + quote(link, safe=""))
    result = get(fetcher, start)
    assert result.error_kind == "invalid_url" and result.body is None, result.error
    assert "/redirect" in (result.error or "") and result.status == 302


TRICKLES = [
    "/page/trickle-headers/x", "/page/trickle-body/x", "/feeds/trickle-headers.xml", "/feeds/trickle-body.xml"
]


def test_a_server_trickling_one_byte_a_second_is_cut_at_the_deadline(fetcher, hostile):
    """Headers and bodies, pages and feeds, all at once (each would take 120 s to finish)."""
    from concurrent.futures import ThreadPoolExecutor

    server, _ = hostile

    def timed(path: str):
        started = time.monotonic()
        result = get(fetcher, server.url(path))
        return result, time.monotonic() - started

    with ThreadPoolExecutor(len(TRICKLES)) as pool:
        outcomes = dict(zip(TRICKLES, pool.map(timed, TRICKLES), strict=True))
    for path, (result, took) in outcomes.items():
        assert result.error_kind == "timeout" and result.body is None, (path, result.error)
        assert took < NOT_HUNG, path
        assert "deadline" in (result.error or ""), (path, result.error)  # the total, not a per-read timeout
        assert server.sent.get(path, 0) < 30, path  # a few seconds' worth of bytes, not 120


def test_a_gzip_bomb_is_cut_at_the_cap_with_no_more_than_the_cap_in_memory(fetcher, hostile):
    server, _ = hostile
    cap = 5 * 1024 * 1024
    tracemalloc.start()
    try:
        result = get(fetcher, server.url("/page/bomb/1"), max_bytes=cap)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.error_kind, result.body) == ("too_large", None), result.error
    assert "decompression" in (result.error or "")
    # The body kept so far plus one decoded piece and one raw read: far below the 1 GiB inside.
    assert peak < 2 * cap + 4 * 1024 * 1024, f"peak {peak:,} bytes"


def test_an_endless_stream_stops_at_the_cap(fetcher, hostile):
    server, _ = hostile
    result = get(fetcher, server.url("/feeds/endless.xml"), max_bytes=FEED_CAP)
    assert result.error_kind == "too_large" and result.body is None
    time.sleep(0.2)  # the server notices the hang-up at its next write
    assert server.sent["/feeds/endless.xml"] < 64 * FEED_CAP  # it stopped: no gigabytes were pulled


# -- one real ingest pass ----------------------------------------------------------------------
def test_a_run_with_every_hostile_source_beside_a_healthy_one(settings, es, hostile):
    from pipeline.ingest import ingest_once

    server, cases = hostile
    sources = [
        source(name.replace("_", "-"), server.url(case.path), timeout=TIMEOUT, max_bytes=FEED_CAP)
        for name, case in cases.items()
    ]
    sid = {name: name.replace("_", "-") for name in cases}
    started = time.monotonic()
    report = ingest_once(settings, es, sources=sources, now=NOW, ignore_schedule=True, fetch_articles=True)
    assert time.monotonic() - started < 60  # trickles of 120 s each would have held it far longer
    by_id = {f.source_id: f for f in report.feeds}
    stored = articles(es, settings)

    def docs_of(name: str) -> list[dict]:
        return [d for d in stored if d["source_id"] == sid[name]]

    # The healthy source: every article, from its page, no error; state advanced.
    healthy = by_id[sid["healthy"]]
    assert healthy.status == "ok" and healthy.article_errors == []
    assert len(docs_of("healthy")) == 3 and all(d["extraction"] == "page" for d in docs_of("healthy"))
    assert feed_state(es, settings, sid["healthy"])["consecutive_failures"] == 0

    for name, case in cases.items():
        result, state = by_id[sid[name]], feed_state(es, settings, sid[name])
        expected = case.feed_error if isinstance(case.feed_error, tuple) else (case.feed_error,)
        if name == "healthy":
            continue
        if case.page_error:
            # A feed read, its entries kept with the feed's text and the page's error; it moves on.
            assert result.status == "ok", (name, result.error)
            docs = docs_of(name)
            assert len(docs) == case.entries, name
            errors = [d.get("error", "") for d in docs]
            assert all(case.page_error in e for e in errors), (name, errors)
            assert all("feed's own text" in d["text"] for d in docs), name
            assert len(result.article_errors) == case.entries, name
            assert report.as_dict()["article_failures"][sid[name]], name
            assert state["last_status"] == "ok" and state["consecutive_failures"] == 0, name
            assert state["body_hash"], name  # advanced: the same body is not processed again
        elif result.status == "error":
            assert result.error_kind in expected, (name, result.error_kind, result.error)
            assert report.as_dict()["failed"][sid[name]].startswith(f"{result.error_kind}:"), name
            assert state["last_status"] == "error" and state["error_kind"] == result.error_kind, name
            assert state["consecutive_failures"] == 1 and state["last_error"], name
            assert docs_of(name) == [], name
        else:
            assert None in expected, (name, result.status)  # billion laughs may parse, unexpanded
            assert len(docs_of(name)) == case.entries, name
            assert all(len(d["title"]) < 1000 and len(d["text"]) < 10_000 for d in docs_of(name)), name
    assert by_id[sid["html_feed"]].error_kind == "not_a_feed"
    must_fail = {sid[n] for n, c in cases.items() if c.feed_error and not isinstance(c.feed_error, tuple)}
    must_fail.add(sid["endless_feed"])
    assert must_fail <= set(report.as_dict()["failed"]) and len(must_fail) == 5

    # A second pass: no crash, nothing duplicated, nothing lost.
    before = sorted(d["id"] for d in stored)
    again = ingest_once(
        settings, es, sources=sources, now=NOW + timedelta(hours=1), ignore_schedule=True, fetch_articles=True
    )
    after = sorted(d["id"] for d in articles(es, settings))
    assert after == before
    again_by_id = {f.source_id: f for f in again.feeds}
    assert sum(f.new_articles + f.near_duplicates for f in again.feeds) == 0
    for name, case in cases.items():
        if case.page_error or name == "healthy":
            assert again_by_id[sid[name]].status in ("ok", "unchanged", "not_modified"), name
    assert feed_state(es, settings, sid["trickle_body_feed"])["consecutive_failures"] == 2


def test_the_cli_exits_1_naming_the_failed_source_and_0_when_all_is_well(
    settings, es, hostile, tmp_path, monkeypatch, capsys
):
    from pipeline.cli import main

    server, cases = hostile
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
    path = tmp_path / "sources.yaml"
    path.write_text(
        "defaults: {allow_private: true, timeout: 2}\nsources:\n"
        f'  - {{id: healthy, name: Healthy sample, url: "{server.url(cases["healthy"].path)}"}}\n'
        f'  - {{id: links, name: Bad links sample, url: "{server.url(cases["bad_links"].path)}"}}\n'
        f'  - {{id: html, name: HTML sample, url: "{server.url(cases["html_feed"].path)}"}}\n'
    )
    assert main(["ingest", "--once", "--sources-file", str(path), "--json"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    summary = [line for line in err if line.startswith("newswatch: ")]
    assert len(summary) == 1 and "html (not_a_feed" in summary[0] and "1 of 3" in summary[0]
    assert "links (" not in summary[0]  # its entries were kept with their errors: not a failed source
    assert len(articles(es, settings)) == 3 + len(BAD_LINKS)

    only_good = ["--sources", "healthy,links"]
    assert main(["ingest", "--once", "--sources-file", str(path), *only_good, "--json"]) == 0
    assert "newswatch: " not in capsys.readouterr().err
