"""Helpers for the claims/alerts tests: claim documents built from SAMPLE sentences (written for
these tests, not taken from any article) and written to the real Elasticsearch node."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipeline.alerts.subscriptions import Subscription
from pipeline.claims.candidates import read_sentence
from pipeline.claims.documents import build_claim_docs
from pipeline.settings import Settings

NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

# SAMPLE DATA, written for these tests.
DEPLOYED_1500 = ("South Korea's spy agency said on Tuesday that North Korea has sent about 1,500 "
                 "special forces troops to Russia's Far East for training.")
DEPLOYED_1500_REWORDED = ("North Korea has sent about 1,500 special forces troops to Russia's Far East "
                          "for training, according to South Korea's intelligence service.")
DEPLOYED_3000 = ("South Korea's spy agency said on Friday that North Korea has now sent about 3,000 "
                 "special forces troops to Russia's Far East for training.")
SATELLITES = ("Russia is expected to help North Korea launch military reconnaissance satellites, "
              "a research fellow at a Seoul institute said.")

EVERYONE = Subscription(id="everyone", recipients=("desk@example.org",), name="Desk")


def claim_doc(text: str, *, article_id: str, outlet: str, motives: list[str] | None = None,
              outlets: list[str] | None = None, url: str | None = None, title: str = "Sample article",
              when: datetime = NOW, score: float = 0.8) -> dict[str, Any]:
    """One claim document as ``extract_pending_claims`` writes it, with a real embedding."""
    from pipeline.classify.backends import get_embedder

    motives = motives if motives is not None else []
    article = {"id": article_id, "source_id": outlet, "outlets": outlets or [outlet],
               "url": url or f"http://127.0.0.1:9/articles/{article_id}.html", "title": title,
               "fetched": when.isoformat().replace("+00:00", "Z"), "on_topic": True, "topic_score": score,
               "language": "en"}
    cand = read_sentence(0, text, motives, {m: score for m in motives})
    (doc,) = build_claim_docs(article, [cand], now=when)
    doc["embedding"] = [float(x) for x in get_embedder("exact").embed([text])[0]]
    return doc


def store_claims(es: Any, settings: Settings, docs: list[dict[str, Any]]) -> None:
    from pipeline.es.bulk import bulk_write
    from pipeline.es.schema import ensure_indices

    ensure_indices(es, settings, ["claims", "clusters", "alerts"])
    report = bulk_write(es, settings.index("claims"), docs, op_type="create", refresh=True)
    assert report.failed == 0, report.errors


def ledger(es: Any, settings: Settings, kind: str | None = None) -> list[dict[str, Any]]:
    """The ledger documents that are sent (bundles, digests), or those of ``kind`` ("event")."""
    es.indices.refresh(index=settings.index("alerts"))
    query = {"term": {"kind": kind}} if kind else {"bool": {"must_not": {"term": {"kind": "event"}}}}
    resp = es.search(index=settings.index("alerts"), size=100, query=query,
                     sort=[{"created": "asc"}, {"id": "asc"}])
    return [h["_source"] for h in resp["hits"]["hits"]]


def cluster(es: Any, settings: Settings, cluster_id: str) -> dict[str, Any]:
    return es.get(index=settings.index("clusters"), id=cluster_id)["_source"]
