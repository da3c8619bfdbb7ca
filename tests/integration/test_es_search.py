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
