"""``pipeline.search.search`` and ``newswatch search`` on SAMPLE documents in the real node."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from pipeline.cli import main
from pipeline.errors import ConfigError, ServiceError
from pipeline.es.schema import drop_prefix
from pipeline.search import parse_since, search, validate_motive
from tests.es_samples import NOW, load_samples


@pytest.fixture(scope="module")
def loaded(es, base_settings):
    settings = replace(base_settings, index_prefix=f"test-sr-{uuid.uuid4().hex[:8]}")
    load_samples(es, settings)
    yield settings
    drop_prefix(es, settings.index_prefix)


def _ids(rows):
    return [r["id"] for r in rows]


def test_words_rank_title_matches_and_skip_duplicate_copies(es, loaded):
    rows = search(loaded, es, "wages treasury")
    assert _ids(rows) == ["a-cash"]  # a-cash-copy has the same title but is a duplicate
    [row] = rows
    assert row["source"] == "northwire" and row["motives"] == ["hard_currency"]
    assert row["url"] == "https://example.test/a-cash" and row["score"] > 0
    assert row["kind"] == "article"


def test_without_words_newest_first_and_filters_combine(es, loaded):
    rows = search(loaded, es, "", size=50)
    times = [r["time"] for r in rows]
    assert times == sorted(times, reverse=True) and all(r["score"] is None for r in rows)
    assert "a-cash-copy" not in _ids(rows) and len(rows) == 10
    assert set(_ids(search(loaded, es, "", motive="costs_and_risks"))) == {"a-front"}
    assert set(_ids(search(loaded, es, "", motive="costs_and_risks.casualties"))) == {"a-front"}
    recent = search(loaded, es, "", since="10h", now=NOW)
    assert set(_ids(recent)) == {"a-front", "a-plain", "a-reject", "a-reject-aid", "a-pending"}
    assert set(_ids(search(loaded, es, "", source="capital-herald"))) == {"a-subs", "a-veto"}
    assert _ids(search(loaded, es, "", source="capital-herald", since="60h", now=NOW)) == ["a-subs"]
    assert search(loaded, es, "", motive="economic_aid", source="capital-herald") == []


def test_claims_search(es, loaded):
    rows = search(loaded, es, "soldiers", claims=True)
    assert set(_ids(rows)) == {"c-new-2h", "c-repeat"}
    assert {r["kind"] for r in rows} == {"claim"}
    assert set(_ids(search(loaded, es, "", claims=True, since="24h", now=NOW, source="northwire"))) == {
        "c-new-2h", "c-new-23h", "c-update", "c-unchecked"}
    assert _ids(search(loaded, es, "", claims=True, motive="costs_and_risks")) == ["c-update"]


def test_user_syntax_never_breaks_the_query(es, loaded):
    assert search(loaded, es, 'wages "unclosed (paren') == []
    assert _ids(search(loaded, es, '"defence pact"')) == ["a-treaty"]
    assert "a-cash" not in _ids(search(loaded, es, "sample -wages", size=50))


def test_missing_index_is_explained(es, base_settings):
    settings = replace(base_settings, index_prefix=f"test-none-{uuid.uuid4().hex[:6]}")
    with pytest.raises(ServiceError, match="newswatch es migrate"):
        search(settings, es, "anything")


def test_parse_since_forms():
    now = datetime(2025, 5, 10, 12, 0, tzinfo=UTC)
    assert parse_since("7d", now=now) == now - timedelta(days=7)
    assert parse_since("24h", now=now) == now - timedelta(hours=24)
    assert parse_since("90m", now=now) == now - timedelta(minutes=90)
    assert parse_since("2w", now=now) == now - timedelta(weeks=2)
    assert parse_since("2025-05-01", now=now) == datetime(2025, 5, 1, tzinfo=UTC)
    assert parse_since("2025-05-01T08:00:00+02:00") == datetime(2025, 5, 1, 6, tzinfo=UTC)
    assert parse_since(None) is None
    with pytest.raises(ConfigError, match="7d"):
        parse_since("last week")


def test_validate_motive():
    assert validate_motive("military_technology.naval") == "military_technology.naval"
    with pytest.raises(ConfigError):
        validate_motive("Hard Currency")
    with pytest.raises(ConfigError, match="known: a, b"):
        validate_motive("c", ["a", "b"])


def test_cli_prints_a_table_and_json(loaded, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", loaded.index_prefix)
    assert main(["search", "wages", "--since", "7d"]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header == ["time", "source", "title", "motives", "score", "link"]
    assert "soldiers' wages flow" in out and "https://example.test/a-cash" in out
    assert out.rstrip().endswith("1 articles")
    assert main(["search", "--claims", "--motive", "costs_and_risks", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["id"] for d in data] == ["c-update"] and data[0]["fields"]["novelty"] == "update"
    assert main(["search", "--motive", "hard_curency"]) == 2  # typo: error names the known ids
    assert "unknown motive 'hard_curency'" in capsys.readouterr().err
    assert main(["search", "nothing-matches-this-xyz"]) == 0
    assert "no results" in capsys.readouterr().out


def test_cli_shows_a_score_only_when_words_rank_the_rows(loaded, monkeypatch, capsys):
    monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", loaded.index_prefix)
    assert main(["search", "--claims", "soldiers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["time", "source", "claim", "motives", "novelty", "score", "link"]
    rows = [line for line in lines[2:-1] if line.strip()]
    assert len(rows) == 2
    assert all(float(line.split()[-2]) > 0 for line in rows)  # the relevance, next to the link
    assert main(["search", "--since", "7d"]) == 0  # no words: newest first, no relevance to show
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["time", "source", "title", "motives", "link"]
    assert out.rstrip().endswith("10 articles")


def test_claim_rows_link_to_the_canonical_url(es, base_settings, monkeypatch, capsys):
    """The feed's link carries tracking parameters; the article stores the canonical URL."""
    from pipeline.claims.candidates import read_sentence
    from pipeline.claims.documents import build_claim_docs
    from pipeline.es.bulk import bulk_write
    from pipeline.es.schema import ensure_indices

    settings = replace(base_settings, index_prefix=f"test-srurl-{uuid.uuid4().hex[:8]}")
    ensure_indices(es, settings)
    try:
        tracked = "https://example.test/story-7?utm_source=rss&utm_medium=feed&id=7"
        canonical = "https://example.test/story-7?id=7"
        article = {"id": "art-7", "title": "Sample: 2,000 more troops arrived", "text": "Sample body.",
                   "source_id": "northwire", "source_name": "northwire", "url": tracked,
                   "canonical_url": canonical, "published": NOW.isoformat(), "status": "classified",
                   "on_topic": True, "topic_score": 0.9, "language": "en"}
        sentence = "Sample: North Korea sent 2,000 more troops, the ministry said."
        (built,) = build_claim_docs(article, [read_sentence(0, sentence)], now=NOW)
        assert built["url"] == canonical  # new claims store the canonical link themselves
        legacy = dict(built, id="claim-legacy", url=tracked, text=sentence + " Sample repeat.")
        orphan = dict(built, id="claim-orphan", article_id="art-gone", url="https://example.test/o",
                      text=sentence + " Sample orphan.")
        for kind, docs in (("articles", [article]), ("claims", [built, legacy, orphan])):
            report = bulk_write(es, settings.index(kind), docs, op_type="index", refresh=True)
            assert report.failed == 0, report.errors
        rows = search(settings, es, "troops", claims=True)
        by_id = {r["id"]: r["url"] for r in rows}
        assert by_id == {built["id"]: canonical, "claim-legacy": canonical,
                         "claim-orphan": "https://example.test/o"}  # no article: its own link
        monkeypatch.setenv("NEWSWATCH_INDEX_PREFIX", settings.index_prefix)
        assert main(["search", "--claims", "troops"]) == 0
        out = capsys.readouterr().out
        assert out.count(canonical) == 2 and "utm_" not in out
    finally:
        drop_prefix(es, settings.index_prefix)
