"""A claim cluster's standing: ``single_source`` -> ``corroborated`` and ``disputed``.

* ``corroborated``: two or more independent outlets carry the claim. Syndicated copies and wire
  copies do not count (``pipeline.alerts.novelty.apply_claim`` keeps them apart).
* ``disputed``: a source denies it (a denial that joins the cluster, or one that is about the same
  event but was kept apart because its source differs), or another source gives a conflicting
  figure for the same event within the update window.

Disputed is final: a denial is not undone by more outlets repeating the claim, and an analyst
wants to see both sides either way. Every change is appended to ``status_history`` with its time
and reason, and becomes a cluster event subscriptions may alert on (``corroborated``,
``disputed``). Each status is entered at most once, so ``<cluster>/<status>`` identifies the event.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["STATUSES", "STATUS_EVENTS", "status_of", "with_status", "is_denial", "add_dispute"]

STATUSES = ("single_source", "corroborated", "disputed")
STATUS_EVENTS = ("corroborated", "disputed")

_CLAIMS = r"(?:claims?|reports?|allegations?)"
_UNTRUE = r"(?:baseless|groundless|unfounded|fabricated|false|fake|nonsense)"
_DENIAL = re.compile(
    rf"\b(?:den(?:y|ies|ied|ying|ial)|reject(?:s|ed)? (?:the |these |those )?{_CLAIMS}|"
    rf"dismiss(?:es|ed)? (?:the |these |those )?{_CLAIMS}|refut(?:e|es|ed)|{_UNTRUE} {_CLAIMS}|"
    rf"{_CLAIMS} (?:are|were|is|was) {_UNTRUE}|(?:called|calls|branded|brands|labelled|labeled) "
    rf"(?:the |these |those |such )?{_CLAIMS} {_UNTRUE})\b", re.I)


def is_denial(text: str) -> bool:
    """Does the sentence report a denial or rejection of a claim?"""
    return bool(_DENIAL.search(text or ""))


def status_of(cluster: dict[str, Any]) -> str:
    if cluster.get("status") == "disputed" or cluster.get("disputed_by"):
        return "disputed"
    if int(cluster.get("independent_outlets") or 0) >= 2:
        return "corroborated"
    return "single_source"


def with_status(cluster: dict[str, Any], now_iso: str, why: str) -> dict[str, Any]:
    """The cluster with ``status`` recomputed; a change is appended to ``status_history``."""
    before = cluster.get("status") or "single_source"
    after = status_of(cluster)
    if after == before and cluster.get("status"):
        return cluster
    c = dict(cluster)
    c["status"] = after
    if after != before or not cluster.get("status_history"):
        c["status_history"] = [*(cluster.get("status_history") or []),
                               {"status": after, "at": now_iso, "why": why}]
        c["status_changed"] = now_iso
    return c


def add_dispute(cluster: dict[str, Any], claim_id: str, reason: str, now_iso: str) -> dict[str, Any]:
    """The cluster disputed by ``claim_id`` for ``reason``; idempotent per claim."""
    if claim_id in (cluster.get("disputed_by") or []):
        return cluster
    c = dict(cluster)
    c["disputed_by"] = [*(cluster.get("disputed_by") or []), claim_id]
    c["dispute_reasons"] = [*(cluster.get("dispute_reasons") or []), reason]
    return with_status(c, now_iso, reason)
