"""The daily digest: per subscriber, the day's new and updated claims per motive, with an inline
PNG chart of claims per motive over the last 7 days.

Digests go through the same ledger as alerts (one document per subscription and day, created
with ``op_type=create``), so a re-run of the digest task for a day never sends a second digest and
a digest that could not be sent is delivered by ``send_pending`` later. The ledger document keeps
the day's claims and the week's counts, so a later delivery sends what the digest said on its day.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pipeline.alerts.delivery import send_pending
from pipeline.alerts.events import CLAIM_FIELDS
from pipeline.alerts.ledger import alert_id, message_id
from pipeline.alerts.subscriptions import Subscription
from pipeline.es.schema import ensure_missing_indices
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

__all__ = ["send_digests"]


def _motive_order(settings: Settings) -> list[str]:
    from pipeline.errors import ConfigError

    try:
        from pipeline.taxonomy import load_taxonomy

        return load_taxonomy(settings.taxonomy_file).top_level
    except (ConfigError, ImportError, OSError):  # the order is cosmetic: alphabetical will do
        return []


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    start = datetime.combine(day, time.min, tzinfo=UTC)
    return start, start + timedelta(days=1)


def _week_counts(es: Any, settings: Settings, day: date) -> tuple[list[str], dict[str, list[int]]]:
    from pipeline.es.client import mapped_errors

    start, end = _day_bounds(day)
    start -= timedelta(days=6)
    days = [(start + timedelta(days=i)).date().isoformat() for i in range(7)]
    with mapped_errors("counting claims per motive"):
        resp = es.search(index=settings.index("claims"), size=0, query={"bool": {"filter": [
            {"range": {"first_seen": {"gte": iso_utc(start), "lt": iso_utc(end)}}},
            {"terms": {"novelty": ["new", "update"]}}]}},
            aggs={"days": {"date_histogram": {"field": "first_seen", "calendar_interval": "day",
                                              "min_doc_count": 0, "time_zone": "UTC",
                                              "extended_bounds": {
                                                  "min": iso_utc(start),
                                                  "max": iso_utc(end - timedelta(seconds=1))}},
                           "aggs": {"motives": {"terms": {"field": "motives", "size": 50}}}}})
    counts: dict[str, list[int]] = {}
    for bucket in resp["aggregations"]["days"]["buckets"]:
        d = bucket["key_as_string"][:10]
        if d not in days:
            continue
        for mb in bucket["motives"]["buckets"]:
            if "." in mb["key"]:
                continue
            counts.setdefault(mb["key"], [0] * 7)[days.index(d)] += mb["doc_count"]
    return days, counts


def _day_claims(es: Any, settings: Settings, day: date) -> list[dict[str, Any]]:
    from elasticsearch import helpers

    from pipeline.es.client import mapped_errors

    start, end = _day_bounds(day)
    with mapped_errors("reading the day's claims"):
        hits = list(helpers.scan(es, index=settings.index("claims"), query={"query": {"bool": {"filter": [
            {"range": {"first_seen": {"gte": iso_utc(start), "lt": iso_utc(end)}}},
            {"terms": {"novelty": ["new", "update"]}}]}}}, _source_includes=list(CLAIM_FIELDS)))
    return sorted((h["_source"] for h in hits), key=lambda c: (str(c.get("first_seen")), c["id"]))


def send_digests(settings: Settings, es: Any, subscriptions: list[Subscription], *, day: date,
                 now: datetime | None = None, send_empty: bool = False) -> dict[str, Any]:
    """Create (once) and deliver the digest of ``day`` for every digest subscription.

    Returns {subscriptions, created, existing, empty, claims, delivery}. A subscription with no
    matching claim that day gets no email unless ``send_empty``.
    """
    from pipeline.es.bulk import bulk_write
    from pipeline.es.client import mapped_errors

    now = now or datetime.now(UTC)
    subs = [s for s in subscriptions if s.digest]
    with mapped_errors("preparing the claims and alerts indices"):
        ensure_missing_indices(es, settings, ["claims", "alerts"])
    claims = _day_claims(es, settings, day)
    days, counts = _week_counts(es, settings, day)
    order = _motive_order(settings)
    docs, empty = [], 0
    for sub in subs:
        # A claim checked before importance existed has none: it is not held back for that.
        mine = [c for c in claims if sub.matches(c, c.get("novelty"))
                and (c.get("importance") is None or float(c["importance"]) >= sub.min_importance)]
        mine.sort(key=lambda c: -float(c.get("importance") or 0.0))
        if not mine and not send_empty:
            empty += 1
            continue
        aid = alert_id(f"digest/{day.isoformat()}", sub.id)
        docs.append({
            "id": aid, "kind": "digest", "event": "digest", "event_id": f"digest/{day.isoformat()}",
            "subscription_id": sub.id, "recipients": list(sub.recipients), "mode": sub.mode,
            "digest_date": day.isoformat(), "status": "pending", "attempts": 0, "created": iso_utc(now),
            "updated": iso_utc(now), "message_id": message_id(settings, aid), "thread_root": None,
            "references": [], "subject": f"[newswatch] Daily digest {day.isoformat()}: {len(mine)} claim(s)",
            "payload": {"day": day.isoformat(), "claims": mine, "motive_order": order,
                        "week": {"days": days, "counts": counts},
                        "subscription": {"id": sub.id, "name": sub.name}},
        })
    made = bulk_write(es, settings.index("alerts"), docs, op_type="create", refresh=True)
    delivery = send_pending(settings, es, now=now, ids=[d["id"] for d in docs], raise_on_unavailable=False) \
        if docs else {"sent": 0}
    return {"subscriptions": len(subs), "created": made.created, "existing": made.conflicts, "empty": empty,
            "claims": len(claims), "errors": made.errors, "delivery": delivery}
