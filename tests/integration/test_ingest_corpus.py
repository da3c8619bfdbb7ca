"""Every real feed of ../shared/corpus/feeds served over HTTP on loopback, ingested into the real
Elasticsearch: exact entry counts, decoded text, absolute links, no HTML, per-feed error records."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pipeline.ingest import ingest_once
from tests.ingest_support import NOW, articles, feed_state, isolated_settings, source
from tests.support import LocalHTTPServer, Response

# Markup the feeds really carry; a literal "<body>" or "<td>" in prose about HTML (TypePad's and
# Sam Ruby's feeds discuss tags) is text, so only tags no prose in the corpus mentions are checked.
TAG = re.compile(r"</?(?:p|br|div|img|span|strong|em|li)\b[^>]*>|<a\s+href|<!\[CDATA", re.I)


def expected_items(body: bytes) -> int:
    """Count items the independent way: ElementTree when well-formed, else the raw tags."""
    try:
        root = ET.fromstring(body.lstrip())
    except (ET.ParseError, ValueError):  # ValueError: expat refuses multi-byte encodings
        return len(re.findall(rb"<(?:item|entry)[\s>]", body))
    return sum(1 for el in root.iter() if el.tag.rsplit("}", 1)[-1] in ("item", "entry"))


@pytest.fixture(scope="module")
def http_server():
    server = LocalHTTPServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def settings(base_settings, es, tmp_path_factory):
    with isolated_settings(base_settings, es, tmp_path_factory.mktemp("corpus")) as s:
        yield s


@pytest.fixture(scope="module")
def corpus_run(shared_dir: Path, http_server, settings, es):
    files = sorted((shared_dir / "corpus" / "feeds").glob("*.xml"))
    assert len(files) >= 30
    sources = []
    for path in files:
        sid = path.stem.lower().replace("_", "-")[:60]
        url = http_server.route(
            f"/feeds/{path.name}",
            Response(path.read_bytes(), headers={"Content-Type": "application/rss+xml"}),
        )
        sources.append(source(sid, url))
    # two worker processes: this run also covers the process-pool path (big runs use it)
    report = ingest_once(settings, es, sources=sources, now=NOW, fetch_articles=False, processes=2)
    by_file = {
        p.name: r
        for p, r in zip(
            files, sorted(report.feeds, key=lambda r: [s.id for s in sources].index(r.source_id)), strict=True
        )
    }
    return files, report, by_file


def test_every_feed_is_taken_and_the_run_completes(corpus_run, es, settings):
    files, report, by_file = corpus_run
    assert len(report.feeds) == len(files)
    assert report.sources_polled == len(files)
    assert report.sources_failed == 1  # only the truncated Reuters feed has nothing
    reuters = by_file["feedrs_reuters_most_read_invalid.xml"]
    assert reuters.status == "error" and reuters.error_kind == "malformed"
    assert reuters.bozo and "no entries" in reuters.error
    state = feed_state(es, settings, reuters.source_id)
    assert state["consecutive_failures"] == 1 and state["error_kind"] == "malformed"
    assert state["body_hash"] is None  # nothing indexed, so nothing to skip next time


def test_entry_counts_match_the_documents(corpus_run):
    files, _, by_file = corpus_run
    for path in files:
        result = by_file[path.name]
        if result.status == "error":
            continue
        assert result.entries == expected_items(path.read_bytes()), path.name
        assert result.new_articles + result.known + result.duplicates == result.entries, path.name


def test_malformed_feeds_keep_recovered_entries_and_say_why(corpus_run, es, settings):
    _, _, by_file = corpus_run
    uol = by_file["rssparser_uol_noticias_latin1_nodecl.xml"]
    assert uol.status == "ok" and uol.bozo and "windows-1252" in uol.bozo_message and uol.entries > 10
    assert feed_state(es, settings, uol.source_id)["bozo"] is True
    for name in ("feedjira_sam_ruby.atom.xml", "feedjira_techcrunch_leading_whitespace.xml"):
        result = by_file[name]
        assert result.status == "ok" and result.entries == 20
        assert any("whitespace" in w for w in result.warnings)


def titles(es, settings, result) -> list[str]:
    return [a["title"] for a in articles(es, settings, source_id=result.source_id)]


def test_accents_and_chinese_are_decoded(corpus_run, es, settings):
    _, _, by_file = corpus_run
    for name, chars in (
        ("rssparser_jornal_de_noticias_iso8859-1.xml", "ãéíóç"),
        ("feedrs_inovacao_tecnologica_iso8859-1.xml", "ãçâ"),
        ("rssparser_uol_noticias_latin1_nodecl.xml", "ãçõé"),
        ("feedrs_ilgiornale_cronache.xml", "è"),
    ):
        text = " ".join(titles(es, settings, by_file[name]))
        assert any(c in text for c in chars), name
        assert "Ã" not in text and "\ufffd" not in text, name
    qq = titles(es, settings, by_file["rssparser_qq_news_gb2312.xml"])
    assert len(qq) == 20
    assert all(re.search(r"[\u4e00-\u9fff]", t) for t in qq) and not any("\ufffd" in t for t in qq)
    docs = articles(es, settings, source_id=by_file["rssparser_qq_news_gb2312.xml"].source_id)
    assert {d["language"] for d in docs} == {"zh"}


def test_links_are_absolute_and_html_is_stripped(corpus_run, es, settings, http_server):
    _, _, by_file = corpus_run
    docs = articles(es, settings)
    assert len(docs) > 400
    for doc in docs:
        assert doc["url"].startswith(("http://", "https://")), doc["url"]
        for field in ("title", "summary", "text"):
            assert not TAG.search(doc.get(field) or ""), (doc["url"], field, doc.get(field, "")[:200])
    insanity = articles(
        es, settings, source_id=by_file["feedrs_insanity_industries_relative_urls.xml"].source_id
    )
    assert {d["url"].split("/post/")[0] for d in insanity} == {"https://insanity.industries"}
    sam = articles(es, settings, source_id=by_file["feedjira_sam_ruby.atom.xml"].source_id)
    assert all(d["url"].startswith(f"{http_server.base_url}/blog/") for d in sam)
    kernel = articles(es, settings, source_id=by_file["feedrs_kernel_org_html_in_description.xml"].source_id)
    assert "mainline" in kernel[0]["text"] and "<td>" not in kernel[0]["text"]


def test_dates_are_utc_and_missing_ones_are_flagged(corpus_run, es, settings):
    _, _, by_file = corpus_run
    # no item dates, but a channel date (lastBuildDate, -03:00): that, in UTC, flagged as estimated
    dicas = articles(es, settings, source_id=by_file["feedrs_dicas_l_rss091_iso8859-1.xml"].source_id)
    assert dicas and all(d["published_estimated"] for d in dicas)
    assert {d["published"] for d in dicas} == {"2020-08-13T13:06:56.000Z"}
    # no dates at all: the first-seen time (the run's `now`), flagged
    tjrs = articles(es, settings, source_id=by_file["feedrs_tjrs_rss091_iso8859-1.xml"].source_id)
    assert tjrs and all(d["published_estimated"] for d in tjrs)
    assert {d["published"] for d in tjrs} == {"2026-03-02T12:00:00.000Z"}
    guardian = articles(es, settings, source_id=by_file["rssparser_guardian_us.xml"].source_id)
    assert len(guardian) == 55 and not any(d["published_estimated"] for d in guardian)
    assert all(
        d["published"].endswith("Z") and d["published"].startswith(("2017-12", "2018-")) for d in guardian
    )
