"""Bundles: the queued claim events of a subscription gathered into emails.

* ``immediate``: one email per group of events, a group being one article's events (all the new
  claims and updates it brought) or one cluster's status change.
* ``batched``: one email every ``every_minutes`` with everything queued, grouped by motive.
* ``max_per_hour``: a subscription never gets more bundles than this in an hour (by the run's
  clock); when more groups wait than fit, the last bundle that fits carries all the rest, and
  when none fits the events stay queued for the next run. Nothing is dropped.

A bundle is one ledger document (``kind: bundle``) that names the events it carries and is sent
by ``pipeline.alerts.delivery`` like any alert. The events are claimed first, each with a
compare-and-set from ``queued`` to ``bundled`` naming the bundle, so two runs at once never put an
event into two emails (the bundle id includes the run, so two runs that split a group write two
bundles, not one id with two contents); then the bundle document is created with
``op_type=create``. A crash
between the two leaves events claimed by a bundle that does not exist: ``repair`` recreates it
from exactly those events once ``LEASE`` has passed (a live bundler is done by then), under the
same id, so it is created once.

Threading: a bundle about one cluster that is not new replies to the email that carried the
cluster's ``new`` event for this subscription, so updates and status changes stay in its thread.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.alerts.ledger import (
    LEASE,
    alert_id,
    es_call,
    event_id,
    message_id,
    new_lease_holder,
    parse_time,
    thread_root,
)
from pipeline.alerts.messages import UNLABELLED, one_line, top_level
from pipeline.alerts.subscriptions import Subscription
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

log = logging.getLogger(__name__)

__all__ = ["make_bundles", "bundle_id", "repair"]
_EVENT_WORDS = {"new": ("new claim", "new claims"), "update": ("update", "updates"),
                "corroborated": ("now corroborated", "now corroborated"),
                "disputed": ("now disputed", "now disputed")}


def bundle_id(subscription_id: str, event_ids: list[str], holder: str = "") -> str:
    """The bundle's id (and so its Message-ID). ``holder`` (the bundling run) keeps two runs that
    split one group between them from writing two different bundles under one id."""
    joined = "|".join([subscription_id, holder, *sorted(event_ids)])
    return "b" + hashlib.blake2b(joined.encode(), digest_size=12).hexdigest()


def _search(es: Any, index: str, query: dict[str, Any], size: int, **kw: Any) -> list[dict[str, Any]]:
    from pipeline.es.client import mapped_errors

    with mapped_errors("reading the alert ledger"):
        return es.search(index=index, query=query, size=size, **kw)["hits"]["hits"]


def _queued(es: Any, index: str, sub: Subscription) -> list[dict[str, Any]]:
    return _search(es, index, {"bool": {"filter": [{"term": {"kind": "event"}},
                                                   {"term": {"status": "queued"}},
                                                   {"term": {"subscription_id": sub.id}}]}},
                   1000, seq_no_primary_term=True, sort=[{"created": "asc"}, {"id": "asc"}])


def _bundles_since(es: Any, index: str, sub: Subscription, since: datetime) -> list[dict[str, Any]]:
    return _search(es, index, {"bool": {"filter": [{"term": {"kind": "bundle"}},
                                                   {"term": {"subscription_id": sub.id}},
                                                   {"range": {"created": {"gt": iso_utc(since)}}}]}},
                   1000, sort=[{"created": "desc"}], source_includes=["created"])


def _groups(events: list[dict[str, Any]], sub: Subscription,
            room: int | None) -> tuple[list[list[dict[str, Any]]], bool]:
    """The events' groups, and whether the cap made the last group carry the rest."""
    if sub.batched:
        groups = [events]
    else:
        by_key: dict[str, list[dict[str, Any]]] = {}
        for hit in events:
            by_key.setdefault(hit["_source"].get("group") or hit["_id"], []).append(hit)
        groups = list(by_key.values())
    if room is not None and len(groups) > room:
        return [*groups[: room - 1], [h for g in groups[room - 1:] for h in g]], True
    return groups, False


def _root(es: Any, settings: Settings, sub: Subscription, cluster_id: str) -> str:
    """The Message-ID of the email that carried ``cluster_id``'s new event to ``sub``."""
    from pipeline.es.client import mapped_errors

    first = alert_id(event_id(cluster_id, "new", ""), sub.id)
    with mapped_errors("reading a cluster's first alert"):
        got = es.options(ignore_status=404).get(index=settings.index("alerts"), id=first,
                                                source_includes=["bundle_id", "kind"])
    bundle = (got.get("_source") or {}).get("bundle_id") if got.get("found") else None
    # Without a bundle the first alert was sent on its own: its Message-ID is derived from its id.
    return message_id(settings, bundle) if bundle else thread_root(settings, cluster_id, sub.id)


def _sections(entries: list[dict[str, Any]], batched: bool) -> list[tuple[str | None, list[dict[str, Any]]]]:
    if not batched:
        return [(None, entries)]
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        tops = top_level(e["claim"].get("motives") or [])
        groups.setdefault(tops[0] if tops else UNLABELLED, []).append(e)
    return sorted(groups.items(), key=lambda kv: (kv[0] == UNLABELLED, -kv[1][0]["importance"], kv[0]))


def _subject(entries: list[dict[str, Any]], root_subject: str | None) -> str:
    top = entries[0]
    text = one_line(top["cluster"].get("text") or top["claim"]["text"], 110)
    if len(entries) == 1:
        kind = top["event"]
        if kind == "update" and root_subject:
            return f"Re: {root_subject}"
        label = {"new": "New claim", "update": "Updated figure", "corroborated": "Corroborated",
                 "disputed": "Disputed"}.get(kind, kind)
        return f"[newswatch] {label}: {text}"
    counts: dict[str, int] = {}
    for e in entries:
        counts[e["event"]] = counts.get(e["event"], 0) + 1
    parts = [f"{n} {_EVENT_WORDS.get(k, (k, k))[n > 1]}" for k, n in counts.items()]
    return f"[newswatch] {', '.join(parts)}: {one_line(top['claim']['text'], 90)}"


def _bundle_doc(settings: Settings, es: Any, sub: Subscription, bid: str, events: list[dict[str, Any]],
                now: datetime, overflow: bool) -> dict[str, Any]:
    from pipeline.feedback.links import feedback_links

    now_iso = iso_utc(now)
    entries = []
    for ev in sorted(events, key=lambda e: (-float(e.get("importance") or 0.0), e["created"], e["id"])):
        p = ev["payload"]
        entries.append({"event_doc_id": ev["id"], "event": ev["event"], "claim": p["claim"],
                        "cluster": p["cluster"], "kibana_link": p["kibana_link"],
                        "importance": float(ev.get("importance") or 0.0), "why": ev.get("why") or "",
                        "feedback": feedback_links(settings, alert_id=bid, claim_id=ev["claim_id"],
                                                   cluster_id=ev["cluster_id"], subscription_id=sub.id,
                                                   now=now)})
    clusters = {e["cluster"]["id"] for e in entries}
    root = root_subject = None
    if len(clusters) == 1 and all(e["event"] != "new" for e in entries):
        cid = next(iter(clusters))
        root = _root(es, settings, sub, cid)
        root_subject = f"[newswatch] New claim: {one_line(entries[0]['cluster'].get('text') or '', 110)}"
    n = len(entries)
    if sub.batched:
        intro = f"{n} claim event(s) since the last email, most important first."
    elif overflow:
        intro = (f"This subscription reached its limit of {sub.max_per_hour} emails an hour: this email "
                 f"carries everything that waited, {n} claim event(s).")
    elif n > 1:
        intro = f"{n} claim events from one article: {entries[0]['claim'].get('title') or ''}".rstrip(": ")
    else:
        intro = ""
    return {
        "id": bid, "kind": "bundle", "event": "bundle", "subscription_id": sub.id,
        "recipients": list(sub.recipients), "mode": sub.mode, "status": "pending", "attempts": 0,
        "created": now_iso, "updated": now_iso, "message_id": message_id(settings, bid),
        "thread_root": root, "references": [root] if root else [], "subject": _subject(entries, root_subject),
        "items": [e["event_doc_id"] for e in entries], "item_count": n,
        "importance": max(e["importance"] for e in entries),
        "cluster_id": next(iter(clusters)) if len(clusters) == 1 else None,
        "claim_id": entries[0]["claim"]["id"], "claim_text": entries[0]["claim"]["text"],
        "motives": sorted({m for e in entries for m in e["claim"].get("motives") or []}),
        "payload": {"intro": intro, "sections": _sections(entries, sub.batched),
                    "subscription": {"id": sub.id, "name": sub.name}, "mode": sub.mode},
    }


def _create(es: Any, index: str, doc: dict[str, Any]) -> bool:
    from elasticsearch import ConflictError

    try:
        with es_call(f"creating bundle {doc['id']}"):
            es.create(index=index, id=doc["id"], document=doc)
        return True
    except ConflictError:
        return False  # made by a run that crashed and was repaired, or by repair itself


def _bundle(settings: Settings, es: Any, sub: Subscription, hits: list[dict[str, Any]], now: datetime,
            wall: Callable[[], datetime], overflow: bool, holder: str) -> tuple[int, int]:
    """Claim the events of one group and create their bundle; (bundles created, events bundled)."""
    from elasticsearch import ConflictError

    index = settings.index("alerts")
    bid = bundle_id(sub.id, [h["_id"] for h in hits], holder)
    claimed = []
    for hit in hits:
        try:
            with es_call(f"claiming event {hit['_id']} for bundle {bid}"):
                es.update(index=index, id=hit["_id"], if_seq_no=hit["_seq_no"],
                          if_primary_term=hit["_primary_term"],
                          doc={"status": "bundled", "bundle_id": bid, "bundled_at": iso_utc(wall()),
                               "updated": iso_utc(now)})
            claimed.append(hit["_source"])
        except ConflictError:
            continue  # another run bundled it since we read it
    if not claimed:
        return 0, 0
    made = _create(es, index, _bundle_doc(settings, es, sub, bid, claimed, now, overflow))
    return int(made), len(claimed)


def repair(settings: Settings, es: Any, subs: dict[str, Subscription], now: datetime,
           wall: Callable[[], datetime]) -> int:
    """Create the bundles a crashed run claimed events for but never wrote; returns how many."""
    from pipeline.es.client import mapped_errors

    index = settings.index("alerts")
    since = wall() - timedelta(days=2)
    recent = {"range": {"bundled_at": {"gte": iso_utc(since)}}}
    hits = _search(es, index, {"bool": {"filter": [{"term": {"kind": "event"}},
                                                   {"term": {"status": "bundled"}}, recent]}}, 5000)
    claimed: dict[str, list[dict[str, Any]]] = {}
    for hit in hits:
        claimed.setdefault(hit["_source"]["bundle_id"], []).append(hit["_source"])
    if not claimed:
        return 0
    with mapped_errors("looking up bundles"):
        found = es.mget(index=index, ids=sorted(claimed), source=False)["docs"]
    missing = [d["_id"] for d in found if not d.get("found")]
    repaired = 0
    for bid in missing:
        events = claimed[bid]
        last = max(parse_time(e.get("bundled_at")) or since for e in events)
        sub = subs.get(events[0]["subscription_id"])
        if wall() - last < LEASE:
            continue  # a live run may still be claiming events for it
        if sub is None:
            sub = Subscription(id=events[0]["subscription_id"],
                               recipients=tuple(events[0].get("recipients") or ()))
            if not sub.recipients:
                log.warning("alerts: bundle %s has no subscription and no recipients; left alone", bid)
                continue
        repaired += _create(es, index, _bundle_doc(settings, es, sub, bid, events, now, overflow=False))
    return repaired


def make_bundles(settings: Settings, es: Any, subscriptions: list[Subscription], *, now: datetime,
                 clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
    """Gather each subscription's queued events into bundles that are due.

    Returns {bundles, events, held_by_cap, waiting, repaired}: ``held_by_cap`` events stay queued
    because the subscription had its hourly emails; ``waiting`` events belong to batched
    subscriptions whose next email is not due yet. ``clock`` is the wall clock of the claims."""
    from pipeline.es.client import mapped_errors

    wall = clock or (lambda: datetime.now(UTC))
    index = settings.index("alerts")
    out = {"bundles": 0, "events": 0, "held_by_cap": 0, "waiting": 0, "repaired": 0}
    with mapped_errors("checking the alert ledger"):
        if not es.indices.exists_alias(name=index):
            return out
        es.indices.refresh(index=index)
    out["repaired"] = repair(settings, es, {s.id: s for s in subscriptions}, now, wall)
    holder = new_lease_holder()
    for sub in subscriptions:
        if not sub.queues:
            continue
        queued = _queued(es, index, sub)
        if not queued:
            continue
        if sub.batched:
            last = _bundles_since(es, index, sub, now - timedelta(minutes=sub.every_minutes))
            if last:
                out["waiting"] += len(queued)
                continue
        room = None
        if sub.max_per_hour is not None:
            room = sub.max_per_hour - len(_bundles_since(es, index, sub, now - timedelta(hours=1)))
            if room <= 0:
                out["held_by_cap"] += len(queued)
                continue
        groups, merged = _groups(queued, sub, room)
        for n, group in enumerate(groups):
            made, events = _bundle(settings, es, sub, group, now, wall, merged and n == len(groups) - 1,
                                   holder)
            out["bundles"] += made
            out["events"] += events
    with mapped_errors("refreshing the alert ledger"):
        es.indices.refresh(index=index)
    return out
