"""The alert task: novelty for new claims, cluster updates, ledger documents, then delivery.

Order of writes per batch, chosen so a crash at any point loses nothing and sends nothing twice:

A. decide each claim's cluster and event (kNN + checks, in memory);
B. record the decision on the claim (``cluster_id``, ``novelty``) — a re-run reuses it;
C. create the ledger documents (``op_type=create``, deterministic ids: conflicts are no-ops);
D. write the clusters (optimistic concurrency; applying a claim twice is a no-op);
E. mark the claims ``novelty_checked``.

Then every due ledger document is delivered (``send_pending``: leases, the "already delivered?"
check and what SMTP leaves possible are described in ``pipeline.alerts.ledger``). Elasticsearch
errors raise ServiceUnavailable/ServiceError so the task fails and retries; per-claim write errors
come back as data in the report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from pipeline.alerts.ledger import (
    LEASE,
    LEASE_FIELDS,
    MAX_ATTEMPTS,
    RETRYABLE,
    alert_id,
    due,
    ensure_missing_indices,
    event_id,
    iso,
    lease_state,
    message_id,
    new_lease_holder,
    thread_root,
)
from pipeline.alerts.mail import (
    DeliveryRejected,
    DeliveryStore,
    SmtpSender,
    build_message,
    kibana_cluster_url,
    one_line,
    render,
)
from pipeline.alerts.novelty import (
    DEFAULT_THRESHOLDS,
    Match,
    NoveltyChecker,
    Thresholds,
    apply_claim,
    new_cluster,
)
from pipeline.alerts.subscriptions import Subscription, load_subscriptions
from pipeline.errors import ConfigError, ServiceError, ServiceUnavailable
from pipeline.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["process_new_claims", "send_pending", "configured_subscriptions"]

CLAIM_FIELDS = ("id", "text", "url", "title", "outlet", "outlets", "first_seen", "published", "motives",
                "score", "attribution", "figures", "hedged", "hedges", "article_id", "on_topic", "novelty")


@contextmanager
def _es_call(what: str) -> Iterator[None]:
    """``mapped_errors``, except that a version conflict stays a ConflictError: for optimistic
    concurrency it is an expected outcome the caller handles, not a service failure."""
    from elasticsearch import ConflictError

    from pipeline.es.client import mapped_errors

    try:
        with mapped_errors(what):
            yield
    except ServiceError as exc:
        if isinstance(exc.__cause__, ConflictError):
            raise exc.__cause__ from None
        raise


def configured_subscriptions(settings: Settings) -> list[Subscription]:
    """The subscriptions file, validated against the taxonomy's motive ids when it loads."""
    known = None
    try:
        from pipeline.taxonomy import load_taxonomy

        known = load_taxonomy(settings.taxonomy_file).ids
    except (ConfigError, ImportError, FileNotFoundError) as exc:
        log.warning("subscriptions: motive ids not checked against the taxonomy (%s)", exc)
    return load_subscriptions(settings.subscriptions_file, known)


def _client(settings: Settings, es: Any) -> Any:
    if es is not None:
        return es
    from pipeline.es.client import build_client

    return build_client(settings)


def _pending_claims(es: Any, settings: Settings, size: int, skip: set[str]) -> list[dict[str, Any]]:
    from pipeline.es.client import mapped_errors

    with mapped_errors("reading claims pending novelty"):
        resp = es.search(index=settings.index("claims"), size=size, source={"exclude_vectors": False},
                         query={"bool": {"must_not": [{"term": {"novelty_checked": True}},
                                                      {"ids": {"values": sorted(skip)[:10_000]}}]}},
                         sort=[{"first_seen": {"order": "asc", "unmapped_type": "date"}},
                               {"id": {"order": "asc"}}])
    return [h["_source"] for h in resp["hits"]["hits"]]


def _resume(checker: NoveltyChecker, claim: dict[str, Any], now_iso: str) -> Match:
    """A claim whose decision was recorded by an interrupted run: reuse it."""
    from pipeline.es.client import mapped_errors

    cid, event = claim["cluster_id"], claim["novelty"]
    if cid in checker.touched:
        prev = checker.touched[cid]
        match = Match(event, apply_claim(prev.cluster, claim, event, now_iso), seq_no=prev.seq_no,
                      primary_term=prev.primary_term)
        checker.remember(match)
        return match
    with mapped_errors("reading a claim cluster"):
        got = checker.es.options(ignore_status=404).get(index=checker.clusters_index, id=cid,
                                                        source_excludes=["embedding"])
    if got.get("found"):
        match = Match(event, apply_claim(got["_source"], claim, event, now_iso), seq_no=got["_seq_no"],
                      primary_term=got["_primary_term"])
        checker.remember(match)
        return match
    if event == "new":
        match = Match("new", new_cluster(claim, now_iso))
        checker.remember(match, vector=claim["embedding"])
        return match
    return checker.decide(claim, now_iso)


def _snapshot(claim: dict[str, Any]) -> dict[str, Any]:
    return {k: claim.get(k) for k in CLAIM_FIELDS}


def _alert_docs(settings: Settings, claim: dict[str, Any], match: Match, subs: list[Subscription],
                now_iso: str) -> list[dict[str, Any]]:
    cluster = match.cluster
    docs = []
    for sub in subs:
        if not sub.immediate or not sub.matches(claim, match.event):
            continue
        eid = event_id(cluster["id"], match.event, claim["id"])
        aid = alert_id(eid, sub.id)
        root = thread_root(settings, cluster["id"], sub.id)
        root_subject = f"[newswatch] New claim: {one_line(cluster['text'], 110)}"
        subject = root_subject if match.event == "new" else f"Re: {root_subject}"
        docs.append({
            "id": aid, "kind": "immediate", "event": match.event, "event_id": eid,
            "cluster_id": cluster["id"], "claim_id": claim["id"], "article_id": claim.get("article_id"),
            "subscription_id": sub.id, "recipients": list(sub.recipients), "mode": sub.mode,
            "motives": claim.get("motives") or [], "claim_text": claim["text"], "status": "pending",
            "attempts": 0, "created": now_iso, "updated": now_iso,
            "message_id": message_id(settings, aid), "thread_root": root,
            "references": [root] if match.event != "new" else [], "subject": subject,
            "payload": {
                "event": match.event, "claim": _snapshot(claim),
                "cluster": {k: cluster.get(k) for k in (
                    "id", "text", "outlets", "independent_outlets", "independent_outlet_ids",
                    "syndicated_outlets", "claim_count", "previous_figures", "updates")},
                "kibana_link": kibana_cluster_url(settings, cluster["id"]),
                "subscription": {"id": sub.id, "name": sub.name},
            },
        })
    return docs


def _persist_clusters(es: Any, checker: NoveltyChecker, ids: set[str], applied: dict[str, list[Any]],
                      now_iso: str) -> list[dict[str, Any]]:
    """Write each touched cluster once; on a concurrent change reload and re-apply our claims."""
    from elasticsearch import ConflictError

    from pipeline.es.client import mapped_errors

    errors = []
    for cid in sorted(ids):
        match = checker.touched[cid]
        for _attempt in range(5):
            doc = match.cluster
            try:
                with _es_call(f"writing claim cluster {cid}"):
                    if match.seq_no is None:
                        resp = es.create(index=checker.clusters_index, id=cid, document=doc)
                    else:
                        resp = es.update(index=checker.clusters_index, id=cid,
                                         doc={k: v for k, v in doc.items() if k != "embedding"},
                                         if_seq_no=match.seq_no, if_primary_term=match.primary_term)
                match.seq_no, match.primary_term = resp["_seq_no"], resp["_primary_term"]
                break
            except ConflictError:
                with mapped_errors(f"re-reading claim cluster {cid}"):
                    got = es.get(index=checker.clusters_index, id=cid, source_excludes=["embedding"])
                current = got["_source"]
                for claim, event in applied.get(cid, []):
                    current = apply_claim(current, claim, event, now_iso)
                match.cluster = current
                match.seq_no, match.primary_term = got["_seq_no"], got["_primary_term"]
        else:
            errors.append({"id": cid, "error": "cluster kept changing under us (5 conflicts)"})
    return errors


def process_new_claims(settings: Settings, es: Any = None, *, now: datetime | None = None,
                       subscriptions: list[Subscription] | None = None, deliver: bool = True,
                       thresholds: Thresholds = DEFAULT_THRESHOLDS, batch_size: int = 200) -> dict[str, Any]:
    """Cluster every claim not yet checked, create its alerts, and deliver due alerts.

    Returns counts: claims, new, repeat, update, alerts_created, alerts_existing, errors (list),
    cluster_ids, alert_ids and ``delivery`` (see ``send_pending``; SMTP being down is reported
    there, not raised: the alerts stay pending for the next run).
    """
    from pipeline.es.bulk import bulk_write
    from pipeline.es.client import mapped_errors

    es = _client(settings, es)
    now = now or datetime.now(UTC)
    now_iso = iso(now)
    subs = configured_subscriptions(settings) if subscriptions is None else subscriptions
    with mapped_errors("preparing the claims, clusters and alerts indices"):
        ensure_missing_indices(es, settings, ["claims", "clusters", "alerts"])
    checker = NoveltyChecker(es, settings.index("clusters"), thresholds)
    report: dict[str, Any] = {"claims": 0, "new": 0, "repeat": 0, "update": 0, "alerts_created": 0,
                              "alerts_existing": 0, "errors": [], "cluster_ids": [], "alert_ids": []}
    applied: dict[str, list[tuple[dict[str, Any], str]]] = {}
    seen: set[str] = set()
    while batch := _pending_claims(es, settings, batch_size, seen):
        decisions: list[tuple[dict[str, Any], Match]] = []
        for claim in batch:
            seen.add(claim["id"])
            if not claim.get("embedding"):
                report["errors"].append({"id": claim["id"], "error": "claim has no embedding"})
                continue
            if claim.get("novelty") and claim.get("cluster_id"):
                match = _resume(checker, claim, now_iso)
            else:
                match = checker.decide(claim, now_iso)
            applied.setdefault(match.cluster["id"], []).append((claim, match.event))
            decisions.append((claim, match))
        claims_alias = settings.index("claims")
        rec = bulk_write(es, claims_alias, [{
            "id": c["id"], "cluster_id": m.cluster["id"], "novelty": m.event,
            "similarity": round(m.cosine, 4),
        } for c, m in decisions], op_type="update")
        failed = {e["id"]: e for e in rec.errors}
        alerts = [a for c, m in decisions if c["id"] not in failed
                  for a in _alert_docs(settings, c, m, subs, now_iso)]
        made = bulk_write(es, settings.index("alerts"), alerts, op_type="create", refresh=True)
        failed.update({a["claim_id"]: e for a in alerts for e in made.errors if e["id"] == a["id"]})
        report["alerts_created"] += made.created
        report["alerts_existing"] += made.conflicts
        report["alert_ids"] += [a["id"] for a in alerts if a["claim_id"] not in failed]
        report["errors"] += _persist_clusters(es, checker, {m.cluster["id"] for _, m in decisions},
                                              applied, now_iso)
        done = []
        for claim, match in decisions:
            if claim["id"] in failed:
                continue
            cluster = checker.touched[match.cluster["id"]].cluster
            done.append({"id": claim["id"], "novelty_checked": True, "novelty_checked_at": now_iso,
                         "independent_outlets": cluster.get("independent_outlets"),
                         "corroborating_outlets": cluster.get("independent_outlet_ids"),
                         "syndicated": claim.get("outlet") in (cluster.get("syndicated_outlets") or [])})
            report[match.event] += 1
            if match.cluster["id"] not in report["cluster_ids"]:
                report["cluster_ids"].append(match.cluster["id"])
        marked = bulk_write(es, claims_alias, done, op_type="update", refresh=True)
        failed.update({e["id"]: e for e in marked.errors})
        report["errors"] += [{"id": k, "error": v.get("reason")} for k, v in failed.items()]
        report["claims"] += len(done) - marked.failed
    with mapped_errors("refreshing claim clusters"):
        es.indices.refresh(index=settings.index("clusters"))
    for err in report["errors"]:
        log.warning("novelty: %s failed: %s", err["id"], err["error"])
    if deliver:
        report["delivery"] = send_pending(settings, es, now=now, raise_on_unavailable=False)
    return report


def _message_for(settings: Settings, doc: dict[str, Any], now: datetime) -> Any:
    payload = doc["payload"]
    if doc.get("kind") == "digest":
        from pipeline.alerts.digest import digest_message

        return digest_message(settings, doc, now)
    context = {"event": payload["event"], "claim": payload["claim"], "cluster": payload["cluster"],
               "kibana_link": payload["kibana_link"], "subscription": payload["subscription"],
               "subject": doc["subject"]}
    return build_message(
        settings, subject=doc["subject"], recipients=doc["recipients"],
        text=render("alert.txt.j2", **context), html=render("alert.html.j2", **context),
        message_id=doc["message_id"], in_reply_to=doc["thread_root"] if doc.get("references") else None,
        references=doc.get("references") or None, date=now.timestamp(),
    )


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


def send_pending(settings: Settings, es: Any = None, *, now: datetime | None = None,
                 ids: list[str] | None = None, raise_on_unavailable: bool = True,
                 limit: int = 1000, store: DeliveryStore | None = None,
                 clock: Callable[[], datetime] | None = None) -> dict[str, Any]:
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
    and ServiceUnavailable is raised unless ``raise_on_unavailable`` is False.
    """
    from elasticsearch import ConflictError

    from pipeline.es.client import mapped_errors

    es = _client(settings, es)
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
    with SmtpSender(settings.smtp) as sender:
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
                with _es_call(f"leasing alert {doc['id']}"):
                    taken = es.update(index=index, id=hit["_id"], if_seq_no=hit["_seq_no"],
                                      if_primary_term=hit["_primary_term"], doc={
                                          "status": "sending", "attempts": earlier + 1,
                                          "message_id": doc["message_id"], "lease_holder": holder,
                                          "lease_expires": iso(taken_at + LEASE), "updated": iso(now)})
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
                    mark |= {"status": "sent", "sent_at": iso(now), "last_error": None,
                             "smtp_response": "already in the mail server's store after an "
                                              "interrupted attempt; not sent again"}
                    out["recovered"] += 1
                else:
                    answer = sender.send(_message_for(settings, doc, now), doc["recipients"])
                    mark |= {"status": "sent", "sent_at": iso(now), "smtp_response": answer,
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
                with _es_call(f"recording the delivery of alert {doc['id']}"):
                    es.update(index=index, id=hit["_id"], if_seq_no=taken["_seq_no"],
                              if_primary_term=taken["_primary_term"], doc=mark | {"updated": iso(now)})
            except ConflictError:
                # Our lease expired and another sender took the alert over: it decides from here.
                log.warning("alerts: lease on %s was lost before its outcome (%s) was recorded",
                            doc["id"], mark.get("status"))
                out["errors"].append({"id": doc["id"], "error": f"lease lost before recording "
                                                                 f"{mark.get('status')}"})
            if unavailable is not None:
                break
    if wrote:
        with mapped_errors("refreshing the alert ledger"):
            es.indices.refresh(index=index)
    if unavailable is not None:
        log.warning("alerts: SMTP unavailable, %d alert(s) stay pending: %s", out["pending"], unavailable)
        out["smtp_error"] = str(unavailable)
        if raise_on_unavailable:
            raise ServiceUnavailable(f"{out['pending']} alert(s) pending: {unavailable}") from unavailable
    return out
