"""Known-article lookups and outlet merges against the articles index.

Why batched: a feed of 50 entries must cost one search to learn which entries are already known
(by any link, by this source's GUID, or by id), never 50 ``exists`` calls. Why read-modify-write:
the node has no scripting, so adding an outlet to an existing article reads it with its sequence
number and writes a partial update conditioned on it; a concurrent writer makes us retry, not lose
its change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipeline.errors import ServiceError
from pipeline.es.client import mapped_errors
from pipeline.settings import Settings

log = logging.getLogger(__name__)
KNOWN_FIELDS = ["id", "links", "guid_keys", "outlets", "duplicate_of"]


@dataclass
class KnownArticles:
    """What this run knows exists: from Elasticsearch lookups and from its own writes."""

    by_link: dict[str, str] = field(default_factory=dict)
    by_guid: dict[str, str] = field(default_factory=dict)
    outlets: dict[str, set[str]] = field(default_factory=dict)
    checked_ids: set[str] = field(default_factory=set)

    def remember(self, doc: dict[str, Any]) -> None:
        aid = doc["id"]
        for link in doc.get("links") or []:
            self.by_link.setdefault(link, aid)
        for key in doc.get("guid_keys") or []:
            self.by_guid.setdefault(key, aid)
        self.outlets.setdefault(aid, set()).update(doc.get("outlets") or [])

    def match(self, *, ids: Iterable[str], links: Iterable[str], guid_key: str | None) -> str | None:
        if guid_key and guid_key in self.by_guid:
            return self.by_guid[guid_key]
        for link in links:
            if link in self.by_link:
                return self.by_link[link]
        for aid in ids:
            if aid in self.outlets:
                return aid
        return None


def lookup_known(
    es: Any,
    settings: Settings,
    known: KnownArticles,
    *,
    ids: list[str],
    links: list[str],
    guid_keys: list[str],
) -> None:
    """One search for every article matching any of these ids, links or GUID keys; results go into
    ``known``. Articles written by this run are already in ``known`` (search may not see them yet);
    earlier runs end with a refresh, so search sees theirs."""
    ids = sorted({i for i in ids if i not in known.outlets and i not in known.checked_ids})
    links = sorted({x for x in links if x not in known.by_link})
    guid_keys = sorted({g for g in guid_keys if g not in known.by_guid})
    known.checked_ids.update(ids)
    should: list[dict[str, Any]] = []
    if ids:
        should.append({"ids": {"values": ids}})
    if links:
        should.append({"terms": {"links": links}})
    if guid_keys:
        should.append({"terms": {"guid_keys": guid_keys}})
    if not should:
        return
    with mapped_errors("looking up known articles"):
        resp = es.search(
            index=settings.index("articles"),
            query={"bool": {"should": should, "minimum_should_match": 1}},
            size=min(10_000, 4 * (len(ids) + len(links) + len(guid_keys))),
            source_includes=KNOWN_FIELDS,
        )
    for hit in resp["hits"]["hits"]:
        known.remember({"id": hit["_id"], **hit["_source"]})


def add_to_article(
    es: Any,
    settings: Settings,
    article_id: str,
    *,
    outlets: Iterable[str] = (),
    links: Iterable[str] = (),
    guid_keys: Iterable[str] = (),
    retries: int = 5,
) -> bool:
    """Union outlets/links/GUID keys into an existing article. True when something changed.

    Optimistic concurrency (``if_seq_no``/``if_primary_term``) instead of a script.
    """
    from elasticsearch import ConflictError, NotFoundError

    index = settings.index("articles")
    for _ in range(retries):
        with mapped_errors(f"reading article {article_id}"):
            try:
                doc = es.get(index=index, id=article_id, source_includes=["outlets", "links", "guid_keys"])
            except NotFoundError:
                return False
        src = doc["_source"]
        change: dict[str, list[str]] = {}
        for name, extra in (("outlets", outlets), ("links", links), ("guid_keys", guid_keys)):
            current = list(src.get(name) or [])
            merged = current + [x for x in dict.fromkeys(extra) if x and x not in current]
            if merged != current:
                change[name] = merged
        if not change:
            return False
        try:
            with mapped_errors(f"updating article {article_id}"):
                es.update(
                    index=index,
                    id=article_id,
                    doc=change,
                    if_seq_no=doc["_seq_no"],
                    if_primary_term=doc["_primary_term"],
                )
            return True
        except ServiceError as exc:
            if not isinstance(exc.__cause__, ConflictError):
                raise
            log.debug("concurrent change of %s, retrying the merge", article_id)
    raise ServiceError(f"article {article_id} kept changing while adding an outlet ({retries} attempts)")


def count_articles(es: Any, settings: Settings) -> int:
    with mapped_errors("counting articles"):
        return int(es.count(index=settings.index("articles"))["count"])


def near_candidates(es: Any, settings: Settings, bands: list[str], since: str) -> list[tuple[str, list[str]]]:
    """(id, bands) of recent originals (not duplicates) sharing any MinHash band with ``bands``."""
    if not bands:
        return []
    query = {
        "bool": {
            "filter": [
                {"terms": {"minhash_bands": sorted(set(bands))}},
                {"range": {"fetched": {"gte": since}}},
            ],
            "must_not": [{"exists": {"field": "duplicate_of"}}],
        }
    }
    with mapped_errors("looking up near-duplicate candidates"):
        resp = es.search(
            index=settings.index("articles"), query=query, size=500, source_includes=["minhash_bands"]
        )
    return [(h["_id"], h["_source"].get("minhash_bands") or []) for h in resp["hits"]["hits"]]


def load_texts(es: Any, settings: Settings, ids: list[str]) -> dict[str, str]:
    with mapped_errors("reading article texts"):
        resp = es.mget(index=settings.index("articles"), ids=ids, source_includes=["text"], realtime=True)
    return {d["_id"]: d["_source"].get("text") or "" for d in resp["docs"] if d.get("found")}
