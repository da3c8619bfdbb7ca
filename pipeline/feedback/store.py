"""Feedback documents in Elasticsearch: one per verified link, created once.

The document id is ``FeedbackToken.feedback_id`` and the write is ``op_type=create``: a replayed
link, two clicks racing, or a mail scanner that also POSTs, all end in one document; the loser
gets a conflict, reported as "already recorded". The claim's motives, outlet and attribution
are copied in at that moment, so reports and evaluation labels need no join with the claims.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.es.schema import ensure_indices
from pipeline.feedback.tokens import FeedbackToken
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

log = logging.getLogger(__name__)
KIND = "feedback"
CLAIM_FIELDS = ["id", "text", "article_id", "motives", "on_topic", "novelty", "outlet", "source_id",
                "source_name", "attribution"]


@dataclass(frozen=True)
class Recorded:
    """The outcome of one POST: ``created`` is False when the verdict was already recorded."""

    id: str
    created: bool
    document: dict[str, Any]


def ensure_feedback_index(es: Any, settings: Settings) -> None:
    """Create the feedback index and alias when missing (a write to a missing alias would
    otherwise create a concrete index named like the alias, without the mapping)."""
    ensure_indices(es, settings, [KIND])


def claim_snapshot(es: Any, settings: Settings, claim_id: str) -> dict[str, Any] | None:
    """The claim's fields a report needs, or None when the claim is not (or no longer) indexed."""
    with mapped_errors(f"read claim {claim_id}"):
        resp = es.options(ignore_status=404).get(index=settings.index("claims"), id=claim_id,
                                                 source_includes=CLAIM_FIELDS)
    return dict(resp["_source"]) if resp.get("found") else None


def feedback_document(token: FeedbackToken, claim: dict[str, Any] | None, *, now: datetime,
                      key_index: int = 0) -> dict[str, Any]:
    """The document for one verified link (pure)."""
    claim = claim or {}
    att = claim.get("attribution") or {}
    attribution = {k: att[k] for k in ("speaker", "organisation", "kind") if att.get(k)}
    return {
        "id": token.feedback_id, "kind": token.kind, "alert_id": token.alert_id,
        "claim_id": token.claim_id, "cluster_id": token.cluster_id,
        "subscription_id": token.subscription_id, "recorded_at": iso_utc(now),
        "link_expires": iso_utc(token.expires), "key_index": key_index,
        "claim_found": bool(claim), "claim_text": claim.get("text"), "article_id": claim.get("article_id"),
        "motives": list(claim.get("motives") or []), "on_topic": claim.get("on_topic"),
        "novelty": claim.get("novelty"), "outlet": claim.get("outlet"),
        "source_id": claim.get("source_id"), "source_name": claim.get("source_name"),
        "attribution": attribution,
        # who the claim is attributed to, for "per source" beside the outlet
        "attribution_source": attribution.get("organisation") or attribution.get("speaker"),
    }


def feedback_recorded(es: Any, settings: Settings, token: FeedbackToken) -> bool:
    """Whether this link's verdict is already recorded (a real-time get: no refresh needed)."""
    with mapped_errors("look up feedback"):
        return bool(es.options(ignore_status=404).exists(index=settings.index(KIND), id=token.feedback_id))


def record_feedback(es: Any, settings: Settings, token: FeedbackToken, *, now: datetime,
                    key_index: int = 0) -> Recorded:
    """Record a verified link's verdict once. Raises ``ServiceUnavailable`` when Elasticsearch
    cannot be reached; then nothing is recorded and the reader can click again later."""
    doc = feedback_document(token, claim_snapshot(es, settings, token.claim_id), now=now,
                            key_index=key_index)
    with mapped_errors("record feedback"):
        resp = es.options(ignore_status=409).create(index=settings.index(KIND), id=doc["id"], document=doc)
    created = resp.meta.status != 409
    if not created:
        log.info("feedback %s (%s on claim %s) was already recorded", doc["id"], token.kind, token.claim_id)
    return Recorded(doc["id"], created, doc)
