"""Claim events queued for the subscriptions that want them, one ledger document each.

A claim event is a cluster's ``new``, ``update``, ``corroborated`` or ``disputed`` moment. For each
subscription that receives events as they happen (immediate or batched) and matches the claim,
the event is written to the alerts index as ``kind: event``, ``status: queued``, with a
deterministic id (``alert_id(event_id, subscription)``), so a re-run creates nothing twice. It is
never sent itself: ``pipeline.alerts.bundles`` gathers queued events into emails.
"""

from __future__ import annotations

from typing import Any

from pipeline.alerts.importance import Importance, importance
from pipeline.alerts.ledger import alert_id, event_id
from pipeline.alerts.messages import kibana_cluster_url
from pipeline.alerts.subscriptions import Subscription
from pipeline.settings import Settings

__all__ = ["CLAIM_FIELDS", "CLUSTER_FIELDS", "claim_snapshot", "event_docs", "status_event_id"]

CLAIM_FIELDS = ("id", "text", "url", "title", "outlet", "outlets", "first_seen", "published", "motives",
                "score", "attribution", "figures", "hedged", "hedges", "article_id", "on_topic", "novelty",
                "language", "importance", "importance_reasons")
CLUSTER_FIELDS = ("id", "text", "outlets", "independent_outlets", "independent_outlet_ids",
                  "syndicated_outlets", "claim_count", "previous_figures", "updates", "status",
                  "dispute_reasons", "motives")


def claim_snapshot(claim: dict[str, Any]) -> dict[str, Any]:
    return {k: claim.get(k) for k in CLAIM_FIELDS}


def status_event_id(cluster_id: str, status: str) -> str:
    """A cluster enters each status at most once (``pipeline.alerts.status``)."""
    return f"{cluster_id}/{status}"


def event_docs(settings: Settings, claim: dict[str, Any], event: str, cluster: dict[str, Any],
               subs: list[Subscription], now_iso: str,
               score: Importance | None = None) -> list[dict[str, Any]]:
    """The queued event documents for ``claim``'s ``event`` in ``cluster``, one per subscription
    that wants it. A status event is matched on the cluster's motives as well as the claim's: the
    denial that disputes a claim rarely repeats its motive words."""
    outlets = int(cluster.get("independent_outlets") or 1)
    score = score or importance(claim, event, independent_outlets=outlets)
    status = event in ("corroborated", "disputed")
    eid = status_event_id(cluster["id"], event) if status else event_id(cluster["id"], event, claim["id"])
    probe = dict(claim)
    if status:
        probe["motives"] = sorted(set(claim.get("motives") or []) | set(cluster.get("motives") or []))
    docs = []
    for sub in subs:
        if not sub.queues or not sub.matches(probe, event) or score.score < sub.min_importance:
            continue
        docs.append({
            "id": alert_id(eid, sub.id), "kind": "event", "event": event, "event_id": eid,
            "cluster_id": cluster["id"], "claim_id": claim["id"], "article_id": claim.get("article_id"),
            "subscription_id": sub.id, "recipients": list(sub.recipients), "mode": sub.mode,
            "motives": probe.get("motives") or [],
            "claim_text": claim["text"], "status": "queued", "created": now_iso, "updated": now_iso,
            "importance": score.score, "why": score.why,
            # what an immediate email holds: an article's events together; a status change alone
            "group": f"cluster:{cluster['id']}" if status else f"article:{claim.get('article_id')}",
            "payload": {
                "event": event, "claim": claim_snapshot(claim),
                "cluster": {k: cluster.get(k) for k in CLUSTER_FIELDS},
                "kibana_link": kibana_cluster_url(settings, cluster["id"]),
            },
        })
    return docs
