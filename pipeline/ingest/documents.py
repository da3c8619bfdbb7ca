"""The documents an ingest run writes to the articles index: an article, or a kept rejection.

Why a rejected entry is still a document: an entry that Elasticsearch refuses for good (or that
fails unexpectedly while it is decided) would fail the same way at every poll; kept as a small
``rejected`` document holding the original (stored, not indexed), nothing is lost and the feed's
state can move past it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pipeline.ingest.canonical import article_id
from pipeline.ingest.dedup import Fingerprint
from pipeline.ingest.extract import Extraction
from pipeline.ingest.parse import FeedEntry, collapse_whitespace
from pipeline.ingest.sources import Source
from pipeline.timefmt import iso_utc

REJECTED_JSON_MAX = 1_000_000  # characters of a rejected document's original that are kept


def article_document(
    *,
    source: Source,
    entry: FeedEntry,
    gkey: str | None,
    extraction: Extraction,
    canonical: str,
    aid: str,
    links: list[str],
    page_url: str | None,
    language: str,
    language_confidence: float,
    fingerprint: Fingerprint | None,
    duplicate_of: str | None,
    fetched: str,
) -> dict[str, Any]:
    """The article as indexed (``status: extracted``); fields without a value are left out."""
    text, fp = extraction.text, fingerprint
    doc: dict[str, Any] = {
        "id": aid,
        "url": entry.link or canonical,
        "canonical_url": canonical,
        "page_url": page_url,
        "guid": entry.guid,
        "guid_keys": [gkey] if gkey else [],
        "links": links,
        "source_id": source.id,
        "source_name": source.name,
        "source_type": source.source_type,
        "outlet": source.outlet,
        "outlets": [source.outlet],
        "feed_url": source.url,
        "title": entry.title or text[:120],
        # the summary is not stored twice: when it is the text, `extraction` says feed_summary
        "summary": entry.summary if entry.summary != text else None,
        "text": text,
        "authors": list(entry.authors),
        "tags": list(entry.tags),
        "published": iso_utc(entry.published),
        "published_estimated": entry.published_estimated,
        "fetched": fetched,
        "language": language,
        "language_confidence": language_confidence,
        "extraction": extraction.method,
        "paywalled": extraction.paywalled,
        "content_hash": hashlib.sha256(collapse_whitespace(text).encode()).hexdigest()[:32],
        "minhash_bands": fp.bands if fp else None,
        "status": "extracted",
        "error": extraction.error,
    }
    if duplicate_of:
        doc["duplicate_of"] = duplicate_of
    return {k: v for k, v in doc.items() if v is not None}


def failed_entry_id(source: Source, entry: FeedEntry) -> str:
    """The id of the document kept for an entry that failed: stable across polls."""
    return article_id(f"urn:newswatch:entry:{source.id}:{entry.entry_id}")


def failed_entry_stub(
    source: Source, entry: FeedEntry, gkey: str | None, error: str, *, fetched: str
) -> dict[str, Any]:
    """The ``rejected`` document of an entry that failed unexpectedly, holding the entry itself."""
    original = {
        "entry": {k: getattr(entry, k) for k in entry.__dataclass_fields__},
        "source_id": source.id,
        "feed_url": source.url,
    }
    stub = rejected_stub(
        {
            "id": failed_entry_id(source, entry),
            "url": safe_text(entry.link or ""),
            "source_id": source.id,
            "source_name": source.name,
            "source_type": source.source_type,
            "outlet": source.outlet,
            "title": safe_text(entry.title),
            "fetched": fetched,
            "original": original,
        },
        {"type": "entry_failed", "reason": error},
    )
    stub["guid_keys"] = [safe_text(gkey)] if gkey else []
    stub["links"] = [safe_text(entry.link)] if entry.link else []
    return stub


def rejected_stub(doc: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """The document kept for an entry Elasticsearch refused: identity, the error, and the whole
    original as JSON (truncated at REJECTED_JSON_MAX characters) in a field that is not indexed."""
    import json

    try:
        body = json.dumps(doc, default=str, ensure_ascii=False)
        body.encode("utf-8")
    except (UnicodeError, ValueError):  # lone surrogates: as JSON escapes, which any reader takes
        body = json.dumps(doc, default=str, ensure_ascii=True)
    stub: dict[str, Any] = {
        "id": doc["id"],
        "status": "rejected",
        "error": f"{error.get('type')}: {error.get('reason')}"[:2000],
        "rejected_document": {"json": body[:REJECTED_JSON_MAX], "truncated": len(body) > REJECTED_JSON_MAX},
    }
    for key, limit in (("url", 4096), ("source_id", 256), ("source_name", 512), ("outlet", 512),
                       ("title", 1000), ("source_type", 64)):
        if isinstance(doc.get(key), str):
            stub[key] = doc[key][:limit]
    for key in ("fetched", "published"):
        if key in doc:
            stub[key] = doc[key]
    if isinstance(doc.get("outlet"), str):
        stub["outlets"] = [doc["outlet"][:512]]
    return stub


def safe_text(value: str) -> str:
    """``value`` with lone surrogates replaced, so it can be sent to Elasticsearch as UTF-8."""
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else value
