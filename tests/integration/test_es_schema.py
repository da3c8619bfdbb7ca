"""Index templates from code: applied, typed for Kibana, and documents round-trip with their types."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from pipeline.errors import ConfigError, ServiceError
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import INDEX_SPECS, alias_target, ensure_indices
from pipeline.es.status import index_status


def _mapping(es, settings, kind):
    index = alias_target(es, settings.index(kind))
    return es.indices.get_mapping(index=index)[index]["mappings"]


def test_templates_are_applied_to_the_versioned_indices(es, settings):
    ensure_indices(es, settings)
    for kind, spec in INDEX_SPECS.items():
        [tpl] = es.indices.get_index_template(name=settings.index(kind))["index_templates"]
        body = tpl["index_template"]
        assert body["index_patterns"] == [f"{settings.index(kind)}-v*"]
        assert body["_meta"]["newswatch_version"] == spec.version
        mapping = _mapping(es, settings, kind)
        assert mapping["_meta"] == {"newswatch_kind": kind, "newswatch_version": spec.version}
        assert set(spec.properties) <= set(mapping["properties"])


def test_fields_are_typed_for_kibana(es, settings):
    ensure_indices(es, settings)
    articles = _mapping(es, settings, "articles")["properties"]
    assert articles["published"]["type"] == "date"
    assert articles["source_name"]["type"] == "keyword"
    assert articles["motives"]["type"] == "keyword"
    assert articles["on_topic"]["type"] == "boolean"
    assert articles["title"]["type"] == "text"
    assert articles["title"]["fields"]["keyword"]["type"] == "keyword"
    claims = _mapping(es, settings, "claims")["properties"]
    embedding = claims["embedding"]
    assert (embedding["type"], embedding["dims"], embedding["similarity"]) == ("dense_vector", 384, "cosine")
    assert claims["attribution"]["properties"]["kind"]["type"] == "keyword"
    assert claims["first_seen"]["type"] == "date"
    assert claims["novelty"]["type"] == "keyword"
    assert _mapping(es, settings, "alerts")["properties"]["created"]["type"] == "date"
    feeds = _mapping(es, settings, "feeds")["properties"]
    assert feeds["consecutive_failures"]["type"] == "integer"
    assert feeds["last_success"]["type"] == "date"


def test_documents_round_trip_with_the_right_types(es, settings):
    ensure_indices(es, settings)
    published = datetime(2025, 3, 1, 8, 30, tzinfo=UTC)
    doc = {"id": "rt-1", "title": "Sample round-trip title", "published": published,
           "motives": ["military_technology", "military_technology.space"], "on_topic": True,
           "topic_score": np.float32(0.75), "motive_scores": {"military_technology": 0.81},
           "evidence": [{"motive": "military_technology", "text": "Sample evidence.", "score": 0.81,
                         "position": 2}]}
    report = bulk_write(es, settings.index("articles"), [doc], refresh=True)
    assert report.errors == [] and report.created == 1
    source = es.get(index=settings.index("articles"), id="rt-1")["_source"]
    assert source["published"] == "2025-03-01T08:30:00+00:00"
    assert source["topic_score"] == pytest.approx(0.75)
    mapping = _mapping(es, settings, "articles")["properties"]
    assert mapping["motive_scores"]["properties"]["military_technology"]["type"] == "float"
    # the date is a date (range), the motive a keyword (exact term), the child implies nothing extra
    hits = es.search(index=settings.index("articles"), query={"bool": {"filter": [
        {"range": {"published": {"gte": "2025-03-01", "lt": "2025-03-02"}}},
        {"term": {"motives": "military_technology.space"}}]}})["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["rt-1"]
    assert es.count(index=settings.index("articles"), query={"term": {"motives": "space"}})["count"] == 0


def test_claim_embedding_supports_knn(es, settings):
    ensure_indices(es, settings)
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(3, 384)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    docs = [{"id": f"k{i}", "text": f"Sample claim {i}", "embedding": v.tolist(), "motives": []}
            for i, v in enumerate(vectors)]
    assert bulk_write(es, settings.index("claims"), docs, refresh=True).ok == 3
    knn = {"field": "embedding", "query_vector": vectors[1].tolist(), "k": 1, "num_candidates": 10}
    resp = es.search(index=settings.index("claims"), knn=knn)
    assert resp["hits"]["hits"][0]["_id"] == "k1"


def test_strict_indices_refuse_unknown_fields_per_document(es, settings):
    ensure_indices(es, settings)
    docs = [{"id": "ok", "status": "pending"}, {"id": "typo", "statsu": "pending"}]
    report = bulk_write(es, settings.index("alerts"), docs)
    assert report.ok == 1
    [error] = report.errors
    assert error["id"] == "typo" and error["type"] == "strict_dynamic_mapping_exception"


def test_ensure_indices_refuses_a_concrete_index_in_place_of_the_alias(es, settings):
    es.indices.create(index=settings.index("feeds"))
    with pytest.raises(ServiceError, match="concrete index, not an alias"):
        ensure_indices(es, settings, ["feeds"])
    with pytest.raises(ConfigError, match="unknown index kind"):
        ensure_indices(es, settings, ["nope"])


def test_status_compares_live_indices_with_the_code(es, settings):
    before = {r["kind"]: r["state"] for r in index_status(es, settings)}
    assert set(before.values()) == {"missing"}
    ensure_indices(es, settings, ["articles"])
    rows = {r["kind"]: r for r in index_status(es, settings)}
    assert rows["articles"]["state"] == "ok" and rows["articles"]["docs"] == 0
    assert rows["claims"]["state"] == "missing"
    assert rows["articles"]["write_blocked"] is False
    es.indices.put_settings(index=rows["articles"]["index"], settings={"index.blocks.write": True})
    assert {r["kind"]: r for r in index_status(es, settings)}["articles"]["write_blocked"] is True


def test_compatible_mapping_changes_are_applied_in_place(es, settings, caplog):
    """A new field or a new ignore_above needs no new index version; a type change does, and is
    only reported (never applied, never an error) until ``es migrate`` runs."""
    from dataclasses import replace

    from pipeline.es.schema import ARTICLES, ensure_indices

    older = replace(ARTICLES, properties={k: v for k, v in ARTICLES.properties.items()
                                          if k not in ("rejected_document", "authors")}
                    | {"authors": {"type": "keyword"}})
    ensure_indices(es, settings, kinds=["articles"], specs={"articles": older})
    alias = settings.index("articles")
    [index] = es.indices.get_alias(name=alias)
    before = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert "rejected_document" not in before and "ignore_above" not in before["authors"]

    ensure_indices(es, settings, kinds=["articles"])
    after = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert after["rejected_document"] == {"type": "object", "enabled": False}
    assert after["authors"]["ignore_above"] == 512
    assert list(es.indices.get_alias(name=alias)) == [index]  # same index, no migration

    incompatible = replace(ARTICLES, properties={**ARTICLES.properties, "authors": {"type": "long"}})
    with caplog.at_level("WARNING", logger="pipeline.es.schema"):
        ensure_indices(es, settings, kinds=["articles"], specs={"articles": incompatible})
    assert "newswatch es migrate" in caplog.text
    kept = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]["authors"]
    assert kept["type"] == "keyword"
