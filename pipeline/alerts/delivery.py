"""Delivery: every due ledger document (bundle, digest, or a single alert written before bundles
existed) is rendered and sent through a channel exactly once, as far as the channel allows.

The protocol (leases, the "already delivered?" check and what SMTP leaves possible) is described
in ``pipeline.alerts.ledger``. Queued claim events are not sent themselves: their status is
``queued`` or ``bundled``, never one of ``RETRYABLE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from pipeline.alerts.channels import Channel, DeliveryRejected, DeliveryStore, SmtpChannel
from pipeline.alerts.ledger import (
    LEASE,
    LEASE_FIELDS,
    MAX_ATTEMPTS,
    RETRYABLE,
    due,
    es_call,
    lease_state,
    new_lease_holder,
)
from pipeline.alerts.messages import message_for
from pipeline.errors import ServiceUnavailable
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

log = logging.getLogger(__name__)

__all__ = ["send_pending"]


def _wall_clock() -> datetime:
    return datetime.now(UTC)


def _alerts_mapping_ready(es: Any, settings: Settings, index: str) -> bool:
    """False when there is no alerts index yet. An index created before the lease fields existed
    gets them now (in place): its strict mapping would refuse the lease write otherwise."""
    from pipeline.es.client import mapped_errors

    with mapped_errors("reading the alert ledger mapping"):
        found = es.options(ignore_status=404).indices.get_mapping(index=index)
        bodies = [b for b in dict(found).values() if isinstance(b, dict) and "mappings" in b]
        if not bodies:
            return False
        if any(f not in b["mappings"].get("properties", {}) for b in bodies for f in LEASE_FIELDS):
            from pipeline.es.schema import ensure_indices

            ensure_indices(es, settings, ["alerts"])
    return True


def _empty_delivery() -> dict[str, Any]:
    return {"sent": 0, "failed": 0, "pending": 0, "skipped": 0, "leased": 0, "recovered": 0,
            "gave_up": 0, "sent_ids": [], "errors": []}


def send_pending(settings: Settings, es: Any, *, now: datetime | None = None,
                 ids: list[str] | None = None, raise_on_unavailable: bool = True,
                 limit: int = 1000, store: DeliveryStore | None = None,
                 clock: Callable[[], datetime] | None = None,
                 channel: Channel | None = None) -> dict[str, Any]:
    """Deliver every due alert (pending, failed, or in ``sending`` with an expired lease) once.

    Returns {sent, failed, pending, skipped, leased, recovered, gave_up, sent_ids, errors}, plus
    ``smtp_error`` when the SMTP server could not be reached. ``pending``: still to be sent
    because SMTP is unreachable or deferred; ``leased``: another sender holds them now;
    ``recovered``: an interrupted earlier attempt had delivered them (found in the server's
    store), marked sent without sending; ``skipped``: another sender took them first.

    The protocol and what it cannot rule out are in ``pipeline.alerts.ledger``. ``store`` answers
    "already delivered?" (default: ask the SMTP server, see ``SmtpSender.delivered``); ``clock``
    is the wall clock the leases are measured with (``now`` is only the run's timestamp, used for
    the Date header and ``sent_at``). When the SMTP server is unreachable the alerts stay pending
    and ServiceUnavailable is raised unless ``raise_on_unavailable`` is False. ``channel`` is where
    messages go (default: SMTP as configured); the caller that builds one closes it.
    """
    from elasticsearch import ConflictError

    from pipeline.es.client import mapped_errors

    now = now or datetime.now(UTC)
    wall = clock or _wall_clock
    index = settings.index("alerts")
    out = _empty_delivery()
    query: dict[str, Any] = {"bool": {"filter": [{"terms": {"status": list(RETRYABLE)}}]}}
    if ids is not None:
        query["bool"]["filter"].append({"ids": {"values": ids}})
    if not _alerts_mapping_ready(es, settings, index):
        return out
    with mapped_errors("reading pending alerts"):
        # Leases written by other senders since the last refresh must be seen, or their alerts
        # look pending: the compare-and-set would still stop a second send, but the report would
        # call them skipped instead of leased.
        es.indices.refresh(index=index)
        resp = es.search(index=index, query=query, size=limit, seq_no_primary_term=True,
                         sort=[{"created": "asc"}, {"id": "asc"}])
    work = []
    for hit in resp["hits"]["hits"]:
        doc = hit["_source"]
        if lease_state(doc, wall()) == "held":  # even a last attempt is in flight until it ends
            out["leased"] += 1
        elif int(doc.get("attempts") or 0) >= MAX_ATTEMPTS:
            out["gave_up"] += 1
        elif due(doc, wall()):
            work.append(hit)
        else:
            out["skipped"] += 1
    unavailable: ServiceUnavailable | None = None
    holder = new_lease_holder()
    wrote = False
    sender = channel if channel is not None else SmtpChannel(settings.smtp)
    try:
        if work:
            try:
                sender.open()
            except ServiceUnavailable as exc:
                unavailable = exc
                out["pending"] += len(work)
                work = []
        lookup: DeliveryStore = store if store is not None else sender
        for n, hit in enumerate(work):
            doc = hit["_source"]
            earlier = int(doc.get("attempts") or 0)
            taken_at = wall()
            try:
                with es_call(f"leasing alert {doc['id']}"):
                    taken = es.update(index=index, id=hit["_id"], if_seq_no=hit["_seq_no"],
                                      if_primary_term=hit["_primary_term"], doc={
                                          "status": "sending", "attempts": earlier + 1,
                                          "message_id": doc["message_id"], "lease_holder": holder,
                                          "lease_expires": iso_utc(taken_at + LEASE),
                                          "updated": iso_utc(now)})
            except ConflictError:
                out["skipped"] += 1  # another sender leased or finished it since our search
                continue
            wrote = True
            mark: dict[str, Any] = {"lease_expires": None}
            try:
                check = None
                if earlier:
                    # An earlier attempt may have got as far as DATA: ask before sending again.
                    found = lookup.delivered(doc["message_id"])
                    check = {True: "found", False: "not_found", None: "unknown"}[found]
                    mark["delivery_check"] = check
                if check == "found":
                    mark |= {"status": "sent", "sent_at": iso_utc(now), "last_error": None,
                             "smtp_response": "already in the mail server's store after an "
                                              "interrupted attempt; not sent again"}
                    out["recovered"] += 1
                else:
                    answer = sender.send(message_for(settings, doc, now), doc["recipients"])
                    mark |= {"status": "sent", "sent_at": iso_utc(now), "smtp_response": answer,
                             "last_error": None}
                    out["sent"] += 1
                    out["sent_ids"].append(doc["id"])
            except ServiceUnavailable as exc:
                unavailable = exc
                mark |= {"status": "pending", "last_error": str(exc)}
                out["pending"] += len(work) - n  # this one and those not tried
            except DeliveryRejected as exc:
                mark |= {"status": "failed", "last_error": str(exc)}
                out["failed"] += 1
                out["errors"].append({"id": doc["id"], "error": str(exc)})
            try:
                with es_call(f"recording the delivery of alert {doc['id']}"):
                    es.update(index=index, id=hit["_id"], if_seq_no=taken["_seq_no"],
                              if_primary_term=taken["_primary_term"], doc=mark | {"updated": iso_utc(now)})
            except ConflictError:
                # Our lease expired and another sender took the alert over: it decides from here.
                log.warning("alerts: lease on %s was lost before its outcome (%s) was recorded",
                            doc["id"], mark.get("status"))
                out["errors"].append({"id": doc["id"], "error": f"lease lost before recording "
                                                                 f"{mark.get('status')}"})
            if unavailable is not None:
                break
    finally:
        if channel is None:
            sender.close()
    if wrote:
        with mapped_errors("refreshing the alert ledger"):
            es.indices.refresh(index=index)
    if unavailable is not None:
        log.warning("alerts: SMTP unavailable, %d alert(s) stay pending: %s", out["pending"], unavailable)
        out["smtp_error"] = str(unavailable)
        if raise_on_unavailable:
            raise ServiceUnavailable(f"{out['pending']} alert(s) pending: {unavailable}") from unavailable
    return out
