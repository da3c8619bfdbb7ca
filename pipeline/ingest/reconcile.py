"""Near duplicates across concurrent polls of one ingest run.

Within one ``ingest_once`` call the near-duplicate index sees every article it writes, but the
ingest DAG polls source batches in parallel tasks: two outlets carrying the same wire story can be
polled at the same moment, and neither copy sees the other. After all batches of a run have
indexed, this pass looks at the run's new articles once more, in a deterministic order (earliest
``fetched``, then id), and marks any later copy as ``duplicate_of`` the earliest original, adding
its outlet to the original's syndication list. Running it twice changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipeline.es.client import build_client, mapped_errors
from pipeline.ingest import articles as store
from pipeline.ingest.dedup import MIN_CONTAINMENT, MIN_JACCARD, shingles, similarity
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

WINDOW = timedelta(days=7)
FIELDS = ["text", "minhash_bands", "fetched", "outlet", "duplicate_of"]


def _order(doc: dict[str, Any]) -> tuple[str, str]:
    return (str(doc.get("fetched") or ""), str(doc["id"]))


def reconcile_near_duplicates(settings: Settings, es: Any = None, *, article_ids: list[str],
                              now: datetime) -> dict[str, Any]:
    """Mark later near copies among ``article_ids`` (and the recent window) as duplicates.

    Returns ``{"checked": n, "marked": [(copy_id, original_id), ...]}``.
    """
    es = es or build_client(settings)
    index = settings.index("articles")
    if not article_ids:
        return {"checked": 0, "marked": []}
    with mapped_errors("refreshing articles before reconciling duplicates"):
        es.indices.refresh(index=index)
        resp = es.mget(index=index, ids=list(dict.fromkeys(article_ids)), source_includes=FIELDS)
    docs = sorted(({"id": d["_id"], **d["_source"]} for d in resp["docs"] if d.get("found")),
                  key=_order)
    since = iso_utc(now - WINDOW)
    marked: list[tuple[str, str]] = []
    for doc in docs:
        if doc.get("duplicate_of") or not doc.get("minhash_bands"):
            continue
        original = _earlier_original(es, settings, doc, since)
        if original is None:
            continue
        with mapped_errors(f"marking {doc['id']} as a copy of {original}"):
            es.update(index=index, id=doc["id"], doc={"duplicate_of": original}, refresh=True)
        if doc.get("outlet"):
            store.add_to_article(es, settings, original, outlets=[doc["outlet"]])
        marked.append((doc["id"], original))
    return {"checked": len(docs), "marked": marked}


def _earlier_original(es: Any, settings: Settings, doc: dict[str, Any], since: str) -> str | None:
    query = {"bool": {
        "filter": [{"terms": {"minhash_bands": sorted(set(doc["minhash_bands"]))}},
                   {"range": {"fetched": {"gte": since}}}],
        "must_not": [{"exists": {"field": "duplicate_of"}}, {"ids": {"values": [doc["id"]]}}],
    }}
    with mapped_errors("looking up near-duplicate originals"):
        resp = es.search(index=settings.index("articles"), query=query, size=50,
                         source_includes=["fetched", "text"])
    mine = shingles(doc.get("text") or "")
    earlier = sorted(({"id": h["_id"], **h["_source"]} for h in resp["hits"]["hits"]), key=_order)
    for cand in earlier:
        if _order(cand) >= _order(doc):
            break
        jac, cont = similarity(mine, shingles(cand.get("text") or ""))
        if jac >= MIN_JACCARD or cont >= MIN_CONTAINMENT:
            return str(cand["id"])
    return None
