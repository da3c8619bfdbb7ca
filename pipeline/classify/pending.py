"""``classify_pending``: the classify stage of the pipeline, against Elasticsearch.

Reads articles with ``status: extracted`` and no ``duplicate_of`` (a near duplicate's motives are
its original's), classifies them in batches and writes the result back as a partial update with
the article's own id, so a retried or re-run task writes the same documents again (idempotent) and
nothing is lost: an article is only marked ``classified`` in the same write that stores its labels.
A node that is down raises ``ServiceUnavailable`` (the task retries); a document Elasticsearch
refuses is reported with its id and reason and stays ``extracted`` for the next run.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

BATCH = 16
PAGE = 200
MAX_ERRORS = 20
SOURCE_FIELDS = ["id", "title", "text", "summary", "language"]


def pending_query() -> dict[str, Any]:
    return {"bool": {"filter": [{"term": {"status": "extracted"}}],
                     "must_not": [{"exists": {"field": "duplicate_of"}}]}}


def _iter_pending(es: Any, index: str, limit: int | None) -> Iterator[dict[str, Any]]:
    """Pending articles in ``id`` order with search_after (stable under concurrent writes)."""
    from pipeline.es.client import mapped_errors

    seen, after = 0, None
    while limit is None or seen < limit:
        size = PAGE if limit is None else min(PAGE, limit - seen)
        kwargs: dict[str, Any] = {"index": index, "query": pending_query(), "size": size,
                                  "sort": [{"id": {"order": "asc", "missing": "_last"}}],
                                  "source_includes": SOURCE_FIELDS}
        if after is not None:
            kwargs["search_after"] = after
        with mapped_errors(f"search for pending articles in {index}"):
            hits = es.search(**kwargs)["hits"]["hits"]
        if not hits:
            return
        for hit in hits:
            seen += 1
            yield {"_id": hit["_id"], **hit["_source"]}
        after = hits[-1]["sort"]
        if len(hits) < size:
            return


def article_update(result: Any, classified_at: str) -> dict[str, Any]:
    """The classification fields written to an article document."""
    return {
        "on_topic": result.on_topic, "topic_score": result.topic_score,
        "motives": result.motives, "motive_scores": result.motive_scores,
        "evidence": result.evidence(), "language_supported": result.language_supported,
        "classifier_version": result.classifier_version, "classified_at": classified_at,
        "sentence_count": len(result.sentences), "status": "classified",
    }


def classify_pending(settings: Settings, es: Any = None, *, limit: int | None = None,
                     now: datetime | None = None, classifier: Any = None) -> dict[str, Any]:
    """Classify pending articles; returns small JSON-able counts and ids (for XCom)."""
    from pipeline.classify.classifier import ArticleInput, get_classifier, iter_batches
    from pipeline.es.bulk import bulk_write
    from pipeline.es.client import build_client
    from pipeline.es.schema import ensure_indices

    es = es or build_client(settings)
    index = settings.index("articles")
    ensure_indices(es, settings, ["articles"])
    classified_at = iso_utc(now or datetime.now(UTC))
    report: dict[str, Any] = {"pending": 0, "classified": 0, "on_topic": 0, "off_topic": 0,
                              "unsupported_language": 0, "failed": 0, "errors": [],
                              "article_ids": [], "on_topic_ids": []}
    for batch in iter_batches(_iter_pending(es, index, limit), BATCH):
        classifier = classifier or get_classifier()
        report["pending"] += len(batch)
        results = classifier.classify_articles([
            ArticleInput(doc.get("title") or "", doc.get("text") or doc.get("summary") or "",
                         doc.get("language")) for doc in batch])
        updates = [{"id": doc["_id"], **article_update(result, classified_at)}
                   for doc, result in zip(batch, results, strict=True)]
        bulk = bulk_write(es, index, updates, op_type="update", refresh=False)
        failed = {e["id"] for e in bulk.errors}
        report["failed"] += len(failed)
        # Keep the XCom small: the count is complete, the reasons are a sample.
        report["errors"].extend(bulk.errors[:max(0, MAX_ERRORS - len(report["errors"]))])
        for doc, result in zip(batch, results, strict=True):
            if doc["_id"] in failed:
                continue
            report["classified"] += 1
            report["article_ids"].append(doc["_id"])
            report["on_topic" if result.on_topic else "off_topic"] += 1
            report["unsupported_language"] += not result.language_supported
            if result.on_topic:
                report["on_topic_ids"].append(doc["_id"])
    if report["classified"]:
        from pipeline.es.client import mapped_errors

        with mapped_errors(f"refresh {index}"):
            es.indices.refresh(index=index)
    return report
