"""classify_pending against the real Elasticsearch node, on real corpus articles."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from pipeline.classify import classify_pending, get_classifier
from pipeline.classify.e5_runtime import get_multilingual_embedder
from pipeline.errors import ServiceUnavailable
from pipeline.es.bulk import bulk_write
from pipeline.es.client import build_client
from pipeline.es.schema import ensure_indices
from pipeline.stack.ports import free_port

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def classifier():
    return get_classifier()


@pytest.fixture(scope="module")
def corpus(shared_dir):
    lines = (shared_dir / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()
    return {row["id"]: row for row in map(json.loads, lines)}


def _doc(article: dict, doc_id: str, **extra) -> dict:
    return {"id": doc_id, "title": article["title"], "text": article["text"],
            "language": article["language"], "status": "extracted", **extra}


def _seed(es, settings, docs):
    ensure_indices(es, settings, ["articles"])
    report = bulk_write(es, settings.index("articles"), docs, refresh=True)
    assert report.failed == 0, report.errors


def test_classifies_pending_articles_and_writes_evidence(es, settings, corpus, classifier):
    _seed(es, settings, [
        _doc(corpus["d002"], "a-sub"),                       # English, on topic, motives
        _doc(corpus["d035"], "a-missile"),                   # NK missile test, no Russia: off topic
        _doc(corpus["d005"], "a-german"),                    # German, on topic: the multilingual model
        _doc(corpus["d002"], "a-copy", duplicate_of="a-sub"),  # near duplicate: left alone
        _doc(corpus["d004"], "a-done", status="classified"),   # not pending
    ])
    report = classify_pending(settings, es, now=NOW)
    assert report["pending"] == 3 and report["classified"] == 3 and report["failed"] == 0
    assert sorted(report["article_ids"]) == ["a-german", "a-missile", "a-sub"]
    assert sorted(report["on_topic_ids"]) == ["a-german", "a-sub"]
    # German is read by multilingual-e5 when its build exists; without it, keywords only
    multilingual = get_multilingual_embedder() is not None
    assert report["unsupported_language"] == (0 if multilingual else 1)
    json.dumps(report)  # small and JSON-able for XCom

    index = settings.index("articles")
    sub = es.get(index=index, id="a-sub")["_source"]
    assert sub["status"] == "classified" and sub["on_topic"] is True
    assert "military_technology" in sub["motives"] and "military_technology.naval" in sub["motives"]
    assert sub["motive_scores"]["military_technology.naval"] >= sub["motive_scores"]["hard_currency"]
    assert sub["classified_at"].startswith("2026-01-05T12:00")
    assert sub["language_supported"] is True
    naval = [e for e in sub["evidence"] if e["motive"] == "military_technology.naval"]
    assert naval and all(set(e) == {"motive", "text", "score", "position"} for e in naval)
    assert all(e["score"] >= classifier.thresholds["military_technology.naval"] for e in naval)
    assert any("reactor" in e["text"] or "submarine" in e["text"] for e in naval)

    missile = es.get(index=index, id="a-missile")["_source"]
    assert missile["on_topic"] is False and missile["motives"] == [] and missile["status"] == "classified"

    german = es.get(index=index, id="a-german")["_source"]
    assert german["on_topic"] is True and german["language_supported"] is multilingual
    if not multilingual:
        assert german["motives"] == [] and german["evidence"] == []

    assert es.get(index=index, id="a-copy")["_source"]["status"] == "extracted"
    assert "on_topic" not in es.get(index=index, id="a-done")["_source"]

    # The dotted child ids are real float fields: Kibana and saved searches can range over them.
    query = {"bool": {"filter": [{"term": {"on_topic": True}}, {"range": {
        "motive_scores.military_technology.naval": {"gte": 0.5}}}]}}
    hits = es.search(index=index, query=query)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a-sub"]


def test_rerun_is_idempotent_and_limit_is_honoured(es, settings, corpus, classifier):
    _seed(es, settings, [_doc(corpus[a], f"b-{a}") for a in ("d001", "d003", "d036")])
    first = classify_pending(settings, es, limit=2, now=NOW)
    assert first["classified"] == 2
    second = classify_pending(settings, es, now=NOW)
    assert second["classified"] == 1
    before = {h["_id"]: h["_source"] for h in es.search(index=settings.index("articles"),
                                                       size=10)["hits"]["hits"]}
    assert classify_pending(settings, es, now=NOW)["pending"] == 0
    # Running the same article again (status reset) writes exactly the same labels.
    es.update(index=settings.index("articles"), id="b-d001", doc={"status": "extracted"}, refresh=True)
    assert classify_pending(settings, es, now=NOW)["classified"] == 1
    after = es.get(index=settings.index("articles"), id="b-d001")["_source"]
    assert after == before["b-d001"]
    assert after["motives"] and "costs_and_risks.defection" in after["motives"]


def test_syndicated_copies_cost_no_model_pass(es, settings, corpus, classifier):
    article = corpus["d011"]
    _seed(es, settings, [_doc(article, "c-original")])
    classify_pending(settings, es, now=NOW)
    passes = classifier.embedder.forward_passes
    _seed(es, settings, [_doc(article, f"c-copy-{i}") for i in range(3)])
    report = classify_pending(settings, es, now=NOW)
    assert report["classified"] == 3
    assert classifier.embedder.forward_passes == passes
    docs = [es.get(index=settings.index("articles"), id=f"c-copy-{i}")["_source"] for i in range(3)]
    assert all(d["motives"] == docs[0]["motives"] for d in docs)


def test_elasticsearch_down_raises_service_unavailable(settings):
    dead = replace(settings, elasticsearch=replace(settings.elasticsearch,
                                                   url=f"http://127.0.0.1:{free_port()}",
                                                   request_timeout=2))
    client = build_client(dead).options(max_retries=0)
    with pytest.raises(ServiceUnavailable):
        classify_pending(dead, client, now=NOW)
