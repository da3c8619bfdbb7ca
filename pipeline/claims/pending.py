"""The claims stage: extract the claims of every classified article still waiting for it.

Work is found by query (classified, on topic, not a duplicate, not yet ``claims_extracted``), so a
run that is missed or repeated loses nothing. Writes are idempotent: claims are created with
``op_type=create`` (a re-run never resets a claim that novelty already processed), and an
article is marked ``claims_extracted`` only after all of its claims are in.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from pipeline.claims.candidates import SentenceClassifier, article_claims
from pipeline.claims.documents import build_claim_docs
from pipeline.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["extract_pending_claims"]


def _pending_articles_query() -> dict[str, Any]:
    return {"bool": {
        "filter": [{"term": {"status": "classified"}}, {"term": {"on_topic": True}}],
        "must_not": [{"exists": {"field": "duplicate_of"}}, {"term": {"claims_extracted": True}},
                     {"term": {"language_supported": False}}],
    }}


def _add_multilingual_vectors(docs: list[dict[str, Any]]) -> None:
    """Give every claim, English ones included, a multilingual-e5 vector (``embedding_xl``) and the
    identity of the build that made it: novelty compares a claim with clusters in *other*
    languages by these, since MiniLM vectors of two languages are unrelated. Without a usable e5
    build the claims go without (novelty then compares within a language only, as before)."""
    from pipeline.classify.e5_runtime import get_multilingual_embedder

    embedder = get_multilingual_embedder()
    if embedder is None:
        return
    vectors = embedder.embed([d["text"] for d in docs])
    for doc, vec in zip(docs, vectors, strict=True):
        doc["embedding_xl"] = [round(float(x), 6) for x in vec]
        doc["embedding_xl_model"] = embedder.identity


def extract_pending_claims(settings: Settings, es: Any = None, *, now: datetime | None = None,
                           classifier: SentenceClassifier | None = None,
                           limit: int | None = None) -> dict[str, Any]:
    """Extract claims from classified, on-topic, non-duplicate articles not yet processed.

    Returns counts for XCom: articles, claims, created, existing (already there from an earlier
    run), failed (per-article errors with reasons), and the article and claim ids.
    Raises ServiceUnavailable when Elasticsearch is down (nothing is marked then).
    """
    from elasticsearch import helpers

    from pipeline.classify.backends import get_embedder
    from pipeline.es.bulk import bulk_write
    from pipeline.es.client import build_client, mapped_errors
    from pipeline.es.schema import ensure_missing_indices

    es = es or build_client(settings)
    now = now or datetime.now(UTC)
    articles_alias = settings.index("articles")
    with mapped_errors("reading articles pending claim extraction"):
        ensure_missing_indices(es, settings, ["claims"])
        if not es.indices.exists_alias(name=articles_alias):
            return {"articles": 0, "claims": 0, "created": 0, "existing": 0, "failed": [],
                    "article_ids": [], "claim_ids": []}
        articles = []
        for hit in helpers.scan(es, index=articles_alias, query={"query": _pending_articles_query()},
                                size=200, _source_excludes=["evidence"]):
            articles.append(hit["_source"] | {"id": hit["_source"].get("id") or hit["_id"]})
            if limit and len(articles) >= limit:
                break
    if classifier is None and articles:  # no pending article: do not pay for loading the model
        from pipeline.classify import get_classifier

        classifier = get_classifier()

    failed: list[dict[str, Any]] = []
    docs_by_article: dict[str, list[dict[str, Any]]] = {}
    for article in articles:
        try:
            candidates = article_claims(article, classifier)
        except ValueError as exc:
            failed.append({"id": article["id"], "error": str(exc)})
            continue
        docs_by_article[article["id"]] = build_claim_docs(article, candidates, now=now)
    all_docs = [d for docs in docs_by_article.values() for d in docs]
    if all_docs:
        vectors = get_embedder("exact").embed([d["text"] for d in all_docs])
        for doc, vec in zip(all_docs, vectors, strict=True):
            doc["embedding"] = [round(float(x), 6) for x in vec]
        _add_multilingual_vectors(all_docs)
    report = bulk_write(es, settings.index("claims"), all_docs, op_type="create", refresh=True)
    bad_claims = {e["id"]: e for e in report.errors}
    done = []
    for article_id, docs in docs_by_article.items():
        errors = [bad_claims[d["id"]] for d in docs if d["id"] in bad_claims]
        if errors:
            failed.append({"id": article_id, "error": f"{len(errors)} claim(s) not written: "
                           f"{errors[0].get('reason')}"})
        else:
            done.append(article_id)
    marks = bulk_write(es, articles_alias, [{"id": a, "claims_extracted": True} for a in done],
                       op_type="update", refresh=True)
    failed.extend({"id": e["id"], "error": f"not marked: {e.get('reason')}"} for e in marks.errors)
    for item in failed:
        log.warning("claims: article %s failed: %s", item["id"], item["error"])
    return {
        "articles": len(articles), "claims": len(all_docs), "created": report.created,
        "existing": report.conflicts, "failed": failed,
        "article_ids": done, "claim_ids": [d["id"] for d in all_docs if d["id"] not in bad_claims],
    }
