"""Headline claims on the real corpus (read from ../shared at run time, never copied) through the
real extraction function and classifier, and a headline claim written to the real Elasticsearch."""

from __future__ import annotations

import json

from pipeline.claims import extract_pending_claims
from pipeline.claims.candidates import article_claims, select_claims
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices
from tests.claims_support import NOW

MIN_SHARE = 0.95


def _items(shared_dir) -> list[dict]:
    path = shared_dir / "corpus" / "news_items.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_at_least_95_percent_of_on_topic_items_yield_a_claim(shared_dir):
    from pipeline.classify import get_classifier
    from pipeline.classify.sentences import split_sentences

    classifier = get_classifier()
    on_topic = [i for i in _items(shared_dir) if i["on_topic"]]
    assert len(on_topic) >= 50, "the corpus shrank: the share below would mean little"
    before = after = claims = 0
    misses = []
    for item in on_topic:
        article = {"id": item["id"], "title": item["title"], "text": item["text"],
                   "language": item["language"], "source_name": item["source"]}
        sentences = split_sentences(item["text"] or "")
        # Before: body sentences only, as extraction worked before headlines were claims.
        results = classifier.classify_sentences(sentences) if sentences else []
        before += bool(select_claims(sentences, results))
        found = article_claims(article, classifier)
        after += bool(found)
        claims += len(found)
        if not found:
            misses.append(f"{item['id']}: {item['title']}")
        assert all(c.origin in {"headline", "body"} for c in found)
    print(f"\non-topic items yielding >=1 claim: before {before}/{len(on_topic)}, "
          f"after {after}/{len(on_topic)}; claims {claims}; misses: {misses}")
    assert after >= MIN_SHARE * len(on_topic), misses
    assert after > before


# SAMPLE, written for this test.
SAMPLE_TITLE = "Ministry says 2,000 more North Korean troops arrived in Kursk"
SAMPLE_SUMMARY = "The briefing was held in the capital on Tuesday."


def test_a_headline_claim_is_written_once_with_its_origin(es, mail_settings):
    settings = mail_settings
    ensure_indices(es, settings)
    article = {"id": "head-1", "source_id": "northwire", "outlets": ["northwire"], "title": SAMPLE_TITLE,
               "text": SAMPLE_SUMMARY, "url": "http://127.0.0.1:9/head-1.html", "language": "en",
               "fetched": "2026-03-02T08:00:00Z", "status": "classified", "on_topic": True,
               "topic_score": 0.9, "language_supported": True}
    bulk_write(es, settings.index("articles"), [article], refresh=True)

    report = extract_pending_claims(settings, es, now=NOW)

    assert report["failed"] == [] and report["created"] == 1
    es.indices.refresh(index=settings.index("claims"))
    (hit,) = es.search(index=settings.index("claims"), size=10)["hits"]["hits"]
    claim = hit["_source"]
    assert claim["origin"] == "headline" and claim["position"] == -1 and claim["text"] == SAMPLE_TITLE
    assert claim["attribution"]["kind"] == "official"
    assert [(f["kind"], f["value"]) for f in claim["figures"]] == [("troops", 2000)]
    # A second extraction of the same article (marks reset) creates nothing new: the id is a hash.
    bulk_write(es, settings.index("articles"), [{"id": "head-1", "claims_extracted": False}],
               op_type="update", refresh=True)
    again = extract_pending_claims(settings, es, now=NOW)
    assert again["created"] == 0 and again["existing"] == 1 and again["claim_ids"] == [hit["_id"]]
