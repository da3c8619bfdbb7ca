"""The index schema as code: one versioned index per kind behind an alias, from index templates.

Names: the alias is ``{prefix}-{kind}`` (e.g. ``newswatch-articles``); the concrete index is
``{prefix}-{kind}-v{version}``; the template ``{prefix}-{kind}`` matches ``{prefix}-{kind}-v*``.
Bumping a spec's ``version`` makes ``newswatch es migrate`` reindex into the new index and move the
alias. The node we test against has no scripting and no x-pack mappers, so the mappings use only
core field types (no ``flattened``, ``unsigned_long`` or painless-based updates).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pipeline.settings import Settings

EMBEDDING_DIMS = 384

KW: dict[str, Any] = {"type": "keyword"}
DATE: dict[str, Any] = {"type": "date"}
BOOL: dict[str, Any] = {"type": "boolean"}
FLOAT: dict[str, Any] = {"type": "float"}
INT: dict[str, Any] = {"type": "integer"}
TEXT_KW: dict[str, Any] = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}}
TEXT: dict[str, Any] = {"type": "text"}

SCORES_AS_FLOAT = {"scores_as_float": {"path_match": "*_scores.*", "mapping": {"type": "float"}}}


@dataclass(frozen=True)
class IndexSpec:
    kind: str
    version: int
    properties: dict[str, Any]
    dynamic_templates: list[dict[str, Any]] = field(default_factory=list)
    shards: int = 1

    def alias(self, settings: Settings) -> str:
        return settings.index(self.kind)

    def index_name(self, settings: Settings, version: int | None = None) -> str:
        return f"{settings.index(self.kind)}-v{version or self.version}"

    def template_body(self, settings: Settings) -> dict[str, Any]:
        return {
            "index_patterns": [f"{settings.index(self.kind)}-v*"],
            "priority": 200,
            "template": {
                "settings": {"number_of_shards": self.shards, "number_of_replicas": 0,
                             "refresh_interval": "1s"},
                "mappings": {
                    "dynamic": "strict" if not self.dynamic_templates else True,
                    "dynamic_templates": self.dynamic_templates,
                    "_meta": {"newswatch_kind": self.kind, "newswatch_version": self.version},
                    "properties": self.properties,
                },
            },
            "_meta": {"newswatch_version": self.version},
        }


EVIDENCE = {"properties": {"motive": KW, "text": TEXT, "score": FLOAT, "position": INT}}

ARTICLES = IndexSpec("articles", 1, {
    "id": KW, "url": KW, "canonical_url": KW, "guid": KW,
    "source_id": KW, "source_name": KW, "source_type": KW, "outlets": KW, "feed_url": KW,
    "title": TEXT_KW, "summary": TEXT, "text": TEXT, "authors": KW, "tags": KW,
    "published": DATE, "published_estimated": BOOL, "fetched": DATE, "language": KW,
    "extraction": KW, "paywalled": BOOL, "content_hash": KW, "simhash": KW,
    "duplicate_of": KW, "status": KW, "error": TEXT,
    "on_topic": BOOL, "topic_score": FLOAT, "language_supported": BOOL,
    "motives": KW, "motive_scores": {"type": "object", "dynamic": True},
    "evidence": EVIDENCE, "classifier_version": KW, "classified_at": DATE,
    "claims_extracted": BOOL,
}, [SCORES_AS_FLOAT])

FIGURE = {"type": "nested", "properties": {
    "kind": KW, "value": {"type": "double"}, "low": {"type": "double"}, "high": {"type": "double"},
    "unit": KW, "qualifier": KW, "period": KW, "text": KW,
}}

CLAIMS = IndexSpec("claims", 1, {
    "id": KW, "article_id": KW, "source_id": KW, "source_name": KW, "outlet": KW,
    "url": KW, "title": TEXT_KW, "text": TEXT_KW, "position": INT,
    "first_seen": DATE, "published": DATE, "language": KW,
    "motives": KW, "motive_scores": {"type": "object", "dynamic": True}, "score": FLOAT,
    "attribution": {"properties": {"speaker": KW, "organisation": KW, "kind": KW, "text": TEXT}},
    "figures": FIGURE, "has_figures": BOOL, "hedged": BOOL, "hedges": KW,
    "embedding": {"type": "dense_vector", "dims": EMBEDDING_DIMS, "index": True,
                  "similarity": "cosine"},
    "cluster_id": KW, "novelty": KW, "duplicate_of_article": KW, "syndicated": BOOL,
    "corroborating_outlets": KW, "independent_outlets": INT, "novelty_checked": BOOL,
}, [SCORES_AS_FLOAT])

ALERTS = IndexSpec("alerts", 1, {
    "id": KW, "event": KW, "cluster_id": KW, "claim_id": KW, "article_id": KW,
    "subscription_id": KW, "recipients": KW, "mode": KW, "digest_date": KW,
    "motives": KW, "claim_text": TEXT, "status": KW, "attempts": INT,
    "created": DATE, "updated": DATE, "sent_at": DATE, "last_error": TEXT,
    "message_id": KW, "thread_root": KW, "subject": TEXT_KW,
})

FEEDS = IndexSpec("feeds", 1, {
    "source_id": KW, "name": KW, "url": KW, "kind": KW, "source_type": KW, "language": KW,
    "etag": KW, "last_modified": KW, "body_hash": KW,
    "last_poll": DATE, "last_success": DATE, "last_error": TEXT, "last_error_at": DATE,
    "last_status": KW, "http_status": INT, "consecutive_failures": INT, "next_poll": DATE,
    "disabled": BOOL, "disabled_reason": TEXT, "bozo": BOOL, "bozo_message": TEXT,
    "entries": INT, "new_articles": INT, "poll_ms": FLOAT,
})

CLUSTERS = IndexSpec("clusters", 1, {
    "id": KW, "representative_claim_id": KW, "text": TEXT_KW, "motives": KW,
    "first_seen": DATE, "last_seen": DATE, "outlets": KW, "independent_outlets": INT,
    "claim_count": INT, "figures": FIGURE, "updates": INT, "thread_message_id": KW,
    "embedding": {"type": "dense_vector", "dims": EMBEDDING_DIMS, "index": True,
                  "similarity": "cosine"},
})

INDEX_SPECS: dict[str, IndexSpec] = {s.kind: s for s in (ARTICLES, CLAIMS, ALERTS, FEEDS, CLUSTERS)}


def ensure_indices(es: Any, settings: Settings, kinds: list[str] | None = None) -> dict[str, str]:
    """Put the templates and create any missing index + alias. Returns alias -> concrete index.

    Idempotent. A version change of an existing alias is left to ``migrate`` (see
    ``pipeline.es.migrate``), which reindexes; this function never drops data.
    """
    out: dict[str, str] = {}
    for kind in kinds or list(INDEX_SPECS):
        spec = INDEX_SPECS[kind]
        alias = spec.alias(settings)
        es.indices.put_index_template(name=alias, body=spec.template_body(settings))
        if es.indices.exists_alias(name=alias):
            out[alias] = next(iter(es.indices.get_alias(name=alias)))
            continue
        index = spec.index_name(settings)
        if not es.indices.exists(index=index):
            es.indices.create(index=index, aliases={alias: {"is_write_index": True}})
        else:
            es.indices.put_alias(index=index, name=alias, is_write_index=True)
        out[alias] = index
    return out
