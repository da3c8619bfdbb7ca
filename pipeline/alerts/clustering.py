"""The clustering step: each claim not yet checked joins a cluster (or starts one), clusters move
through their status, and the resulting claim events are queued for the subscriptions.

Order of writes per batch, chosen so a crash at any point loses nothing and queues nothing twice:

A. decide each claim's cluster and event (kNN + checks, in memory), and the clusters it disputes;
B. record the decision on the claim (``cluster_id``, ``novelty``): a re-run reuses it;
C. create the queued event documents (``op_type=create``, deterministic ids: conflicts are no-ops);
D. write the clusters (optimistic concurrency; applying a claim twice is a no-op);
E. mark the claims ``novelty_checked``, with their importance and the cluster's status.

A dispute found in A for a claim whose decision a later re-run reuses (B done, D not) is not
recomputed: the claim's own cluster is right, the other cluster stays undisputed until the next
denial or conflicting figure. Elasticsearch errors raise ServiceUnavailable/ServiceError so the
task fails and retries; per-claim write errors come back as data in the report.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from pipeline.alerts.clusters import (
    apply_claim,
    apply_event,
    new_cluster,
    status_event,
)
from pipeline.alerts.events import event_docs
from pipeline.alerts.importance import importance
from pipeline.alerts.ledger import es_call
from pipeline.alerts.novelty import (
    DEFAULT_THRESHOLDS,
    VECTOR_FIELDS,
    Match,
    NoveltyChecker,
    Thresholds,
)
from pipeline.alerts.subscriptions import Subscription
from pipeline.es.schema import ensure_missing_indices
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

log = logging.getLogger(__name__)

__all__ = ["cluster_new_claims"]


def _pending_claims(es: Any, settings: Settings, size: int, skip: set[str]) -> list[dict[str, Any]]:
    from pipeline.es.client import mapped_errors

    with mapped_errors("reading claims pending novelty"):
        resp = es.search(index=settings.index("claims"), size=size, source={"exclude_vectors": False},
                         query={"bool": {"must_not": [{"term": {"novelty_checked": True}},
                                                      {"ids": {"values": sorted(skip)[:10_000]}}]}},
                         sort=[{"first_seen": {"order": "asc", "unmapped_type": "date"}},
                               {"id": {"order": "asc"}}])
    return [h["_source"] for h in resp["hits"]["hits"]]


def _stored_cluster(checker: NoveltyChecker, cid: str) -> Match | None:
    """The cluster as this run knows it (touched) or as Elasticsearch holds it, with its version."""
    from pipeline.es.client import mapped_errors

    if cid in checker.touched:
        prev = checker.touched[cid]
        return Match(prev.event, prev.cluster, seq_no=prev.seq_no, primary_term=prev.primary_term)
    with mapped_errors("reading a claim cluster"):
        got = checker.es.options(ignore_status=404).get(index=checker.clusters_index, id=cid,
                                                        source_excludes=list(VECTOR_FIELDS))
    if not got.get("found"):
        return None
    return Match("repeat", got["_source"], seq_no=got["_seq_no"], primary_term=got["_primary_term"])


def _resume(checker: NoveltyChecker, claim: dict[str, Any], now_iso: str) -> Match:
    """A claim whose decision was recorded by an interrupted run: reuse it."""
    cid, event = claim["cluster_id"], claim["novelty"]
    stored = _stored_cluster(checker, cid)
    if stored is not None:
        after = apply_claim(stored.cluster, claim, event, now_iso)
        match = Match(event, after, seq_no=stored.seq_no, primary_term=stored.primary_term,
                      status_event=status_event(stored.cluster, after))
        checker.remember(match)
        return match
    if event == "new":
        match = Match("new", new_cluster(claim, now_iso))
        checker.remember(match, vector=claim["embedding"])
        return match
    return checker.decide(claim, now_iso)


def _dispute(checker: NoveltyChecker, claim: dict[str, Any], cid: str, reason: str,
             now_iso: str) -> Match | None:
    """Mark cluster ``cid`` disputed by ``claim``; the Match carries a status event if it changed."""
    stored = _stored_cluster(checker, cid)
    if stored is None:
        return None
    after = apply_event(stored.cluster, claim, f"dispute:{reason}", now_iso)
    match = Match(stored.event, after, seq_no=stored.seq_no, primary_term=stored.primary_term,
                  status_event=status_event(stored.cluster, after))
    checker.remember(match)
    return match


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
                with es_call(f"writing claim cluster {cid}"):
                    if match.seq_no is None:
                        resp = es.create(index=checker.clusters_index, id=cid, document=doc)
                    else:
                        resp = es.update(index=checker.clusters_index, id=cid,
                                         doc={k: v for k, v in doc.items() if k not in VECTOR_FIELDS},
                                         if_seq_no=match.seq_no, if_primary_term=match.primary_term)
                match.seq_no, match.primary_term = resp["_seq_no"], resp["_primary_term"]
                break
            except ConflictError:
                with mapped_errors(f"re-reading claim cluster {cid}"):
                    got = es.get(index=checker.clusters_index, id=cid, source_excludes=list(VECTOR_FIELDS))
                current = got["_source"]
                for claim, event in applied.get(cid, []):
                    current = apply_event(current, claim, event, now_iso)
                match.cluster = current
                match.seq_no, match.primary_term = got["_seq_no"], got["_primary_term"]
        else:
            errors.append({"id": cid, "error": "cluster kept changing under us (5 conflicts)"})
    return errors


def _decide_batch(checker: NoveltyChecker, batch: list[dict[str, Any]], now_iso: str,
                  applied: dict[str, list[Any]], report: dict[str, Any], seen: set[str]
                  ) -> tuple[list[tuple[dict[str, Any], Match]], list[tuple[dict[str, Any], Match]]]:
    """Step A: (claim, match) per claim, and (claim, match) per cluster a claim disputes."""
    decisions, disputed = [], []
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
        for cid, reason in match.disputes:
            other = _dispute(checker, claim, cid, reason, now_iso)
            if other is not None:
                applied.setdefault(cid, []).append((claim, f"dispute:{reason}"))
                disputed.append((claim, other))
    return decisions, disputed


def cluster_new_claims(settings: Settings, es: Any, subscriptions: list[Subscription], *,
                       now: datetime, thresholds: Thresholds = DEFAULT_THRESHOLDS,
                       batch_size: int = 200) -> dict[str, Any]:
    """Cluster every claim not yet checked and queue its events for the subscriptions.

    Returns counts: claims, new, repeat, update, corroborated, disputed (status changes),
    events_created, events_existing, errors (list), cluster_ids, event_ids."""
    from pipeline.es.bulk import bulk_write
    from pipeline.es.client import mapped_errors

    now_iso = iso_utc(now)
    with mapped_errors("preparing the claims, clusters and alerts indices"):
        ensure_missing_indices(es, settings, ["claims", "clusters", "alerts"])
    checker = NoveltyChecker(es, settings.index("clusters"), thresholds)
    report: dict[str, Any] = {"claims": 0, "new": 0, "repeat": 0, "update": 0, "corroborated": 0,
                              "disputed": 0, "events_created": 0, "events_existing": 0, "errors": [],
                              "cluster_ids": [], "event_ids": []}
    applied: dict[str, list[tuple[dict[str, Any], str]]] = {}
    seen: set[str] = set()
    claims_alias = settings.index("claims")
    while batch := _pending_claims(es, settings, batch_size, seen):
        decisions, disputed = _decide_batch(checker, batch, now_iso, applied, report, seen)
        rec = bulk_write(es, claims_alias, [{
            "id": c["id"], "cluster_id": m.cluster["id"], "novelty": m.event,
            "similarity": round(m.cosine, 4),
        } for c, m in decisions], op_type="update")
        failed = {e["id"]: e for e in rec.errors}
        events = []
        for claim, match, own in [*((c, m, True) for c, m in decisions),
                                  *((c, m, False) for c, m in disputed)]:
            if claim["id"] in failed:
                continue
            if own and match.event != "repeat":
                events += event_docs(settings, claim, match.event, match.cluster, subscriptions, now_iso)
            if match.status_event:
                events += event_docs(settings, claim, match.status_event, match.cluster, subscriptions,
                                     now_iso)
                report[match.status_event] += 1
        made = bulk_write(es, settings.index("alerts"), events, op_type="create", refresh=True)
        failed.update({a["claim_id"]: e for a in events for e in made.errors if e["id"] == a["id"]})
        report["events_created"] += made.created
        report["events_existing"] += made.conflicts
        report["event_ids"] += [a["id"] for a in events if a["claim_id"] not in failed]
        touched = {m.cluster["id"] for _, m in [*decisions, *disputed]}
        report["errors"] += _persist_clusters(es, checker, touched, applied, now_iso)
        done = []
        for claim, match in decisions:
            if claim["id"] in failed:
                continue
            cluster = checker.touched[match.cluster["id"]].cluster
            score = importance(claim, match.event,
                               independent_outlets=int(cluster.get("independent_outlets") or 1))
            done.append({"id": claim["id"], "novelty_checked": True, "novelty_checked_at": now_iso,
                         "independent_outlets": cluster.get("independent_outlets"),
                         "corroborating_outlets": cluster.get("independent_outlet_ids"),
                         "syndicated": claim.get("outlet") in (cluster.get("syndicated_outlets") or []),
                         "importance": score.score, "importance_reasons": list(score.reasons),
                         "cluster_status": cluster.get("status")})
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
    return report
