"""Claim clusters as documents: a new cluster from its first claim, and the cluster after each
claim joins it (idempotent, so a re-run after a crash changes nothing).

Outlets: a claim adds its outlet to the cluster as an *independent* outlet, unless its sentence is
an exact copy of one the cluster already holds from another outlet (a wire copy); an article's
syndicated copies (``outlets`` beyond its own source, found by near-duplicate detection at ingest)
are recorded as syndicated, never as independent.

Figures: a claim's figures replace the cluster's when it is new or an update; the ones replaced
are kept as ``previous_figures`` for the email. Status: ``pipeline.alerts.status``.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from pipeline.alerts.signatures import claim_date
from pipeline.alerts.status import STATUS_EVENTS, add_dispute, is_denial, status_of, with_status
from pipeline.claims.figures import Figure, figures_relation

__all__ = ["figure_key", "text_key", "claim_event", "recorded_event", "new_cluster", "apply_claim",
           "apply_event", "status_event", "source_label"]


def figure_key(f: Figure) -> str:
    high = "inf" if f.high == float("inf") else f"{f.high:.4g}"
    return f"{f.kind}:{f.period or '-'}:{f.low:.4g}:{high}"


def text_key(text: str) -> str:
    norm = re.sub(r"\s+", " ", text).strip().lower()
    return hashlib.blake2b(norm.encode(), digest_size=8).hexdigest()


def claim_event(claim_figures: list[Figure], cluster: dict[str, Any]) -> str:
    """``update`` when the claim brings the first number the cluster lacked ("North Korea has
    sent troops" then "... has sent 10,000 troops"; a vague "thousands" is not one) or figures
    that differ from the cluster's current ones and were never seen in it before (an old figure
    repeated late is corroboration, not news); else ``repeat``."""
    current = [Figure.from_dict(f) for f in cluster.get("figures") or []]
    if not current:
        return "update" if any(f.value is not None for f in claim_figures) else "repeat"
    if figures_relation(claim_figures, current) != "different":
        return "repeat"
    seen = set(cluster.get("figure_keys") or [])
    if all(figure_key(f) in seen for f in claim_figures):
        return "repeat"
    return "update"


def recorded_event(cluster: dict[str, Any], claim_id: str) -> str:
    for item in cluster.get("claim_events") or []:
        cid, _, event = item.rpartition(":")
        if cid == claim_id:
            return event
    return "repeat"


def _union(*lists: Any) -> list[str]:
    out: list[str] = []
    for items in lists:
        for item in items or []:
            if item and item not in out:
                out.append(item)
    return out


def new_cluster(claim: dict[str, Any], now_iso: str) -> dict[str, Any]:
    cluster_id = f"cl-{claim['id']}"
    cluster = {
        "id": cluster_id, "representative_claim_id": claim["id"], "text": claim["text"],
        "motives": list(claim.get("motives") or []), "first_seen": claim_date(claim) or now_iso,
        "last_seen": claim_date(claim) or now_iso, "updated": now_iso,
        "outlets": [], "independent_outlet_ids": [], "syndicated_outlets": [], "independent_outlets": 0,
        "claim_count": 0, "claim_ids": [], "text_keys": [], "figures": [], "figure_keys": [],
        "previous_figures": [], "updates": 0, "last_event": "new", "last_claim_id": claim["id"],
        "attribution_kinds": [], "article_ids": [], "urls": [], "embedding": claim.get("embedding"),
    }
    # The cluster is compared through its first claim's text, so it takes that claim's language
    # and multilingual vector (absent ones stay absent: a null vector is not a vector).
    for key in ("language", "embedding_xl", "embedding_xl_model"):
        if claim.get(key):
            cluster[key] = claim[key]
    return apply_claim(cluster, claim, "new", now_iso)


def apply_claim(cluster: dict[str, Any], claim: dict[str, Any], event: str, now_iso: str) -> dict[str, Any]:
    """The cluster after ``claim`` joined it with ``event`` (new/repeat/update). Idempotent: a
    claim already in ``claim_ids`` changes nothing, so a re-run after a crash is safe."""
    if claim["id"] in (cluster.get("claim_ids") or []):
        return cluster
    c = dict(cluster)
    own = claim.get("outlet") or "unknown"
    copies = [o for o in claim.get("outlets") or [] if o != own]
    key = text_key(claim["text"])
    independent = list(c.get("independent_outlet_ids") or [])
    syndicated = list(c.get("syndicated_outlets") or [])
    wire_copy = key in (c.get("text_keys") or []) and own not in independent
    if wire_copy:
        syndicated = _union(syndicated, [own])
    else:
        independent = _union(independent, [own])
    syndicated = _union(syndicated, [o for o in copies if o not in independent])
    syndicated = [o for o in syndicated if o not in independent]
    figures = [Figure.from_dict(f) for f in claim.get("figures") or []]
    c.update({
        "independent_outlet_ids": independent, "syndicated_outlets": syndicated,
        "independent_outlets": len(independent),
        "outlets": _union(c.get("outlets"), [own], copies),
        "claim_ids": _union(c.get("claim_ids"), [claim["id"]]),
        "claim_events": _union(c.get("claim_events"), [f"{claim['id']}:{event}"]),
        "claim_count": int(c.get("claim_count") or 0) + 1,
        "text_keys": _union(c.get("text_keys"), [key]),
        "article_ids": _union(c.get("article_ids"), [claim.get("article_id")]),
        "urls": _union(c.get("urls"), [claim.get("url")]),
        "motives": _union(c.get("motives"), claim.get("motives")),
        "attribution_kinds": _union(c.get("attribution_kinds"),
                                    [(claim.get("attribution") or {}).get("kind")]),
        # The cluster's dates follow its claims' publication dates (see ``claim_date``), so the
        # time window compares events, not the moments we happened to fetch them.
        "last_seen": max(str(c.get("last_seen") or ""), str(claim_date(claim) or "")) or now_iso,
        "updated": now_iso, "last_event": event, "last_claim_id": claim["id"],
        "figure_keys": _union(c.get("figure_keys"), [figure_key(f) for f in figures]),
    })
    if event == "new" or (event == "update") or (not c.get("figures") and figures):
        if event == "update":
            c["previous_figures"] = c.get("figures") or []
            c["updates"] = int(c.get("updates") or 0) + 1
        if figures:
            c["figures"] = [f.as_doc() for f in figures]
    source = source_label(claim)
    if event != "new" and is_denial(claim["text"]):
        return add_dispute(c, claim["id"], f"denied by {source}", now_iso)
    why = f"first reported by {source}" if event == "new" else f"also reported by {own} ({source})"
    return with_status(c, now_iso, why)


def source_label(claim: dict[str, Any]) -> str:
    attribution = claim.get("attribution") or {}
    return (attribution.get("organisation") or attribution.get("speaker") or claim.get("outlet")
            or "an unnamed source")


def apply_event(cluster: dict[str, Any], claim: dict[str, Any], event: str, now_iso: str) -> dict[str, Any]:
    """``apply_claim``, or for ``dispute:<reason>`` the cluster disputed by a claim that was kept
    out of it (a denial from another source, a conflicting figure): what a re-run re-applies."""
    if event.startswith("dispute:"):
        return add_dispute(cluster, claim["id"], event.partition(":")[2], now_iso)
    return apply_claim(cluster, claim, event, now_iso)


def status_event(before: dict[str, Any] | None, after: dict[str, Any]) -> str | None:
    """``corroborated`` or ``disputed`` when the cluster entered that status, else None. A cluster
    born in this step has no status event: its ``new`` event already carries it."""
    if before is None:
        return None
    old, new = before.get("status") or status_of(before), status_of(after)
    return new if new != old and new in STATUS_EVENTS else None
