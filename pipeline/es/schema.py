"""The index schema as code: one versioned index per kind behind an alias, from index templates.

Names: the alias is ``{prefix}-{kind}`` (e.g. ``newswatch-articles``); the concrete index is
``{prefix}-{kind}-v{version}``; the template ``{prefix}-{kind}`` matches ``{prefix}-{kind}-v*``.
Bumping a spec's ``version`` makes ``newswatch es migrate`` reindex into the new index and move the
alias. The node we test against has no scripting and no x-pack mappers, so the mappings use only
core field types (no ``flattened``, ``unsigned_long`` or painless-based updates).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ConfigError, ServiceError
from pipeline.es.client import mapped_errors
from pipeline.settings import EMBEDDING_DIMS, Settings

log = logging.getLogger(__name__)

KW: dict[str, Any] = {"type": "keyword"}
DATE: dict[str, Any] = {"type": "date"}
BOOL: dict[str, Any] = {"type": "boolean"}
FLOAT: dict[str, Any] = {"type": "float"}
INT: dict[str, Any] = {"type": "integer"}
TEXT_KW: dict[str, Any] = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 512}}}
TEXT: dict[str, Any] = {"type": "text"}
# Keywords whose values come from feeds and pages (anyone can send a 40,000-character author):
# longer values are kept in _source but not indexed, instead of failing the whole document.
KW_URL: dict[str, Any] = {"type": "keyword", "ignore_above": 4096}
KW_NAME: dict[str, Any] = {"type": "keyword", "ignore_above": 512}

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

    def mappings(self) -> dict[str, Any]:
        return {
            "dynamic": "strict" if not self.dynamic_templates else True,
            "dynamic_templates": self.dynamic_templates,
            "_meta": {"newswatch_kind": self.kind, "newswatch_version": self.version},
            "properties": self.properties,
        }

    def template_body(self, settings: Settings) -> dict[str, Any]:
        return {
            "index_patterns": [f"{settings.index(self.kind)}-v*"],
            "priority": 200,
            "template": {
                "settings": {"number_of_shards": self.shards, "refresh_interval": "1s",
                             **replica_settings(settings.elasticsearch.replicas)},
                "mappings": self.mappings(),
            },
            "_meta": {"newswatch_version": self.version},
        }


EVIDENCE = {"properties": {"motive": KW, "text": TEXT, "score": FLOAT, "position": INT}}

ARTICLES = IndexSpec("articles", 1, {
    "id": KW, "url": KW_URL, "canonical_url": KW_URL, "guid": KW_URL,
    "source_id": KW, "source_name": KW_NAME, "source_type": KW, "outlets": KW_NAME, "feed_url": KW_URL,
    "title": TEXT_KW, "summary": TEXT, "text": TEXT, "authors": KW_NAME, "tags": KW_NAME,
    "published": DATE, "published_estimated": BOOL, "fetched": DATE, "language": KW,
    "extraction": KW, "paywalled": BOOL, "content_hash": KW, "simhash": KW,
    "duplicate_of": KW, "status": KW, "error": TEXT,
    "on_topic": BOOL, "topic_score": FLOAT, "language_supported": BOOL,
    # Motive ids contain dots (``military_technology.naval``): without ``subobjects: false``
    # Elasticsearch would read that key as a path under the float ``military_technology``.
    "motives": KW, "motive_scores": {"type": "object", "dynamic": True, "subobjects": False},
    "evidence": EVIDENCE, "classifier_version": KW, "classified_at": DATE,
    "sentence_count": INT,
    "claims_extracted": BOOL,
    # ingestion: every link and (source|guid) seen for this story, for exact dedup across polls
    "links": KW_URL, "guid_keys": KW_URL, "outlet": KW_NAME, "page_url": KW_URL,
    "language_confidence": FLOAT, "minhash_bands": KW,
    # an entry Elasticsearch refused (status "rejected"): the document as JSON, stored, not indexed
    "rejected_document": {"type": "object", "enabled": False},
}, [SCORES_AS_FLOAT])

FIGURE = {"type": "nested", "properties": {
    "kind": KW, "value": {"type": "double"}, "low": {"type": "double"}, "high": {"type": "double"},
    "unit": KW, "qualifier": KW, "period": KW, "text": KW,
}}

# A second vector per claim and cluster, from multilingual-e5 (pipeline.alerts.novelty): MiniLM
# vectors cannot compare a Polish claim with an English one, e5 vectors can. The model's identity
# is stored beside it so vectors of another e5 build are never compared (a kNN filter); a claim
# indexed before the field existed simply has none and is no cross-language candidate. New fields
# only: ensure_indices/migrate add them to an existing index in place, the version stays.
XL_VECTOR: dict[str, Any] = {
    "embedding_xl": {"type": "dense_vector", "dims": EMBEDDING_DIMS, "index": True, "similarity": "cosine"},
    "embedding_xl_model": KW,
}

CLAIMS = IndexSpec("claims", 1, {
    "id": KW, "article_id": KW, "source_id": KW, "source_name": KW_NAME, "outlet": KW_NAME,
    "outlets": KW_NAME, "url": KW_URL, "title": TEXT_KW, "text": TEXT_KW, "position": INT, "origin": KW,
    "on_topic": BOOL,
    "first_seen": DATE, "published": DATE, "language": KW, "extracted_at": DATE,
    # subobjects: false, so "military_technology" and "military_technology.space" are both leaves.
    "motives": KW, "motive_scores": {"type": "object", "dynamic": True, "subobjects": False}, "score": FLOAT,
    "attribution": {"properties": {"speaker": KW, "organisation": KW, "kind": KW, "text": TEXT}},
    "figures": FIGURE, "has_figures": BOOL, "hedged": BOOL, "hedges": KW,
    "embedding": {"type": "dense_vector", "dims": EMBEDDING_DIMS, "index": True,
                  "similarity": "cosine"},
    **XL_VECTOR,
    "cluster_id": KW, "novelty": KW, "similarity": FLOAT, "duplicate_of_article": KW, "syndicated": BOOL,
    "corroborating_outlets": KW, "independent_outlets": INT, "novelty_checked": BOOL,
    "novelty_checked_at": DATE,
    # pipeline.alerts.importance and the cluster's status when the claim was checked
    "importance": FLOAT, "importance_reasons": KW, "cluster_status": KW,
}, [SCORES_AS_FLOAT])

ALERTS = IndexSpec("alerts", 1, {
    "id": KW, "kind": KW, "event": KW, "event_id": KW, "cluster_id": KW, "claim_id": KW,
    "article_id": KW, "subscription_id": KW, "recipients": KW, "mode": KW, "digest_date": KW,
    "motives": KW, "claim_text": TEXT, "status": KW, "attempts": INT,
    "created": DATE, "updated": DATE, "sent_at": DATE, "last_error": TEXT, "smtp_response": TEXT,
    "message_id": KW, "thread_root": KW, "references": KW, "subject": TEXT_KW,
    "payload": {"type": "object", "enabled": False},
    # the sending lease (pipeline.alerts.ledger); new fields only, so the version stays and
    # ensure_indices/migrate add them to an existing index in place
    "lease_holder": KW, "lease_expires": DATE, "delivery_check": KW,
    # claim events queued for a subscription and the bundles (emails) that carry them
    # (pipeline.alerts.bundles); new fields only, added in place like the lease
    "importance": FLOAT, "why": TEXT, "group": KW, "bundle_id": KW, "bundled_at": DATE,
    "items": KW, "item_count": INT,
})

FEEDS = IndexSpec("feeds", 1, {
    "source_id": KW, "name": KW, "url": KW, "kind": KW, "source_type": KW, "language": KW,
    "etag": KW, "last_modified": KW, "body_hash": KW,
    "last_poll": DATE, "last_success": DATE, "last_error": TEXT, "last_error_at": DATE,
    "last_status": KW, "http_status": INT, "consecutive_failures": INT, "next_poll": DATE,
    "disabled": BOOL, "disabled_reason": TEXT, "bozo": BOOL, "bozo_message": TEXT,
    "entries": INT, "new_articles": INT, "poll_ms": FLOAT,
    "outlet": KW, "error_kind": KW, "final_url": KW, "warnings": TEXT, "poll_minutes": FLOAT,
})

CLUSTERS = IndexSpec("clusters", 1, {
    "id": KW, "representative_claim_id": KW, "text": TEXT_KW, "motives": KW,
    "first_seen": DATE, "last_seen": DATE, "updated": DATE, "outlets": KW,
    "independent_outlet_ids": KW, "syndicated_outlets": KW, "independent_outlets": INT,
    "claim_count": INT, "claim_ids": KW, "claim_events": KW, "text_keys": KW,
    "figures": FIGURE, "figure_keys": KW,
    "previous_figures": FIGURE, "updates": INT, "last_event": KW, "last_claim_id": KW,
    "attribution_kinds": KW, "article_ids": KW, "urls": KW, "thread_message_id": KW,
    # pipeline.alerts.status: single_source -> corroborated / disputed, with its history
    "status": KW, "status_changed": DATE, "disputed_by": KW, "dispute_reasons": KW,
    "status_history": {"properties": {"status": KW, "at": DATE, "why": TEXT}},
    "embedding": {"type": "dense_vector", "dims": EMBEDDING_DIMS, "index": True,
                  "similarity": "cosine"},
    # the language of the representative claim: which of the two vectors a new claim compares by
    "language": KW,
    **XL_VECTOR,
})

# One document per verdict from a signed link in an email (pipeline.feedback): the id comes from
# the token, so a replayed link is a conflict, not a second document. The claim's motives, outlet
# and attribution are copied in when it is recorded, so the report needs no join.
FEEDBACK = IndexSpec("feedback", 1, {
    "id": KW, "kind": KW, "alert_id": KW, "claim_id": KW, "cluster_id": KW, "subscription_id": KW,
    "recorded_at": DATE, "link_expires": DATE, "key_index": INT,
    "claim_found": BOOL, "claim_text": TEXT, "article_id": KW, "motives": KW, "on_topic": BOOL,
    "novelty": KW, "outlet": KW_NAME, "source_id": KW, "source_name": KW_NAME,
    "attribution": {"properties": {"speaker": KW_NAME, "organisation": KW_NAME, "kind": KW}},
    "attribution_source": KW_NAME,
})

INDEX_SPECS: dict[str, IndexSpec] = {s.kind: s for s in (ARTICLES, CLAIMS, ALERTS, FEEDS, CLUSTERS, FEEDBACK)}


def version_of_index(index: str, mapping_meta: dict[str, Any] | None = None) -> int | None:
    """The schema version of a concrete index: its mapping ``_meta``, else its ``-vN`` suffix."""
    if mapping_meta and isinstance(mapping_meta.get("newswatch_version"), int):
        return int(mapping_meta["newswatch_version"])
    match = re.search(r"-v(\d+)$", index)
    return int(match.group(1)) if match else None


def alias_target(es: Any, alias: str) -> str | None:
    """The concrete index an alias writes to, or None when the alias does not exist.

    With several indices behind the alias, the one flagged ``is_write_index`` wins; without a
    flag the alias is ambiguous and a ``ServiceError`` says so rather than guessing.
    """
    found = es.options(ignore_status=404).indices.get_alias(name=alias)
    indices = {name: body for name, body in dict(found).items() if isinstance(body, dict)
               and alias in body.get("aliases", {})}
    if not indices:
        return None
    if len(indices) == 1:
        return next(iter(indices))
    writers = [n for n, b in indices.items() if b["aliases"][alias].get("is_write_index")]
    if len(writers) != 1:
        raise ServiceError(f"alias {alias} points to {sorted(indices)} with no single write index")
    return writers[0]


def ensure_indices(es: Any, settings: Settings, kinds: list[str] | None = None,
                   specs: dict[str, IndexSpec] | None = None) -> dict[str, str]:
    """Put the templates and create any missing index + alias. Returns alias -> concrete index.

    Idempotent and safe when two processes race (an index created meanwhile is not an error).
    A version change of an existing alias is left to ``migrate`` (see ``pipeline.es.migrate``),
    which reindexes; this function never drops data.
    """
    specs = specs or INDEX_SPECS
    out: dict[str, str] = {}
    for kind in kinds or list(specs):
        if kind not in specs:
            raise ConfigError(f"unknown index kind {kind!r}; known: {', '.join(specs)}")
        spec = specs[kind]
        alias = spec.alias(settings)
        with mapped_errors(f"ensure index {alias}"):
            es.indices.put_index_template(name=alias, body=spec.template_body(settings))
            current = alias_target(es, alias)
            if current is not None:
                _update_in_place(es, spec, current, settings)
                out[alias] = current
                continue
            if es.indices.exists(index=alias):
                raise ServiceError(f"{alias} is a concrete index, not an alias: move its documents "
                                   f"into {spec.index_name(settings)} and delete it first")
            index = spec.index_name(settings)
            resp = es.options(ignore_status=400).indices.create(
                index=index, aliases={alias: {"is_write_index": True}})
            if "error" in resp and resp["error"].get("type") != "resource_already_exists_exception":
                raise ServiceError(f"could not create {index}: {resp['error'].get('reason')}")
            if alias_target(es, alias) is None:
                es.indices.put_alias(index=index, name=alias, is_write_index=True)
        out[alias] = index
    return out


def ensure_missing_indices(es: Any, settings: Settings, kinds: list[str]) -> None:
    """Create only the indices whose alias is missing: putting templates on every run would make
    a cluster-state update per task run for nothing."""
    missing = [k for k in kinds if not es.indices.exists_alias(name=settings.index(k))]
    if missing:
        ensure_indices(es, settings, missing)


def replica_settings(value: str) -> dict[str, Any]:
    """Index settings for ``NEWSWATCH_ES_REPLICAS``: ``"2"`` is a fixed count, ``"0-1"`` or
    ``"1-all"`` a range Elasticsearch adjusts to the number of data nodes."""
    text = str(value).strip().lower()
    if re.fullmatch(r"\d{1,2}", text):
        return {"number_of_replicas": int(text), "auto_expand_replicas": "false"}
    if re.fullmatch(r"\d{1,2}-(?:\d{1,2}|all)", text):
        low, high = text.split("-")
        if high == "all" or int(low) <= int(high):
            return {"auto_expand_replicas": text}
    raise ConfigError(f"NEWSWATCH_ES_REPLICAS={value!r}: expected a replica count (\"1\") or a range "
                      "kept within the data nodes (\"0-1\", \"1-all\")")


def _apply_replicas(es: Any, index: str, wanted: dict[str, Any]) -> None:
    """Bring an existing index to the configured replicas (a dynamic setting: no reindex)."""
    current = es.indices.get_settings(index=index)[index]["settings"]["index"]
    expand = str(current.get("auto_expand_replicas", "false")).lower()
    if "auto_expand_replicas" in wanted and "number_of_replicas" not in wanted:
        if expand != wanted["auto_expand_replicas"]:
            es.indices.put_settings(index=index, settings={"index": wanted})
    elif expand != "false" or int(current.get("number_of_replicas", 0)) != wanted["number_of_replicas"]:
        es.indices.put_settings(index=index, settings={"index": wanted})


def _update_in_place(es: Any, spec: IndexSpec, index: str, settings: Settings | None = None) -> None:
    """Apply the compatible part of a mapping change (new fields, ``ignore_above``) to an existing
    index of the same version; anything else needs ``newswatch es migrate`` (a version bump).
    The replica setting follows the configuration whatever the version."""
    if settings is not None:
        _apply_replicas(es, index, replica_settings(settings.elasticsearch.replicas))
    meta = es.indices.get_mapping(index=index)[index]["mappings"].get("_meta", {})
    if meta.get("newswatch_version") != spec.version:
        return  # another version: migrate's business
    resp = es.options(ignore_status=400).indices.put_mapping(
        index=index, properties=spec.properties, dynamic_templates=spec.dynamic_templates)
    if "error" in resp:
        log.warning("the mapping of %s differs from the code in a way that needs a new index "
                    "version and `newswatch es migrate`: %s", index, resp["error"].get("reason"))


def drop_prefix(es: Any, prefix: str) -> None:
    """Delete every index and index template named ``{prefix}-*`` (test and benchmark clean-up).

    Refuses the default prefix so a typo cannot wipe a real installation.
    """
    if not prefix or prefix == "newswatch":
        raise ValueError(f"refusing to drop the indices of prefix {prefix!r}")
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*", expand_wildcards="all")
    found = es.options(ignore_status=404).indices.get_index_template(name=f"{prefix}-*")
    for item in found.get("index_templates", []):
        es.indices.delete_index_template(name=item["name"])
