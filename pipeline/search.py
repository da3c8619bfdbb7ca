"""Search articles or claims from a terminal or a script: ``newswatch search``.

A person types words, not query syntax, so the text goes through ``simple_query_string`` (it never
fails on a stray quote or bracket; ``"exact phrase"``, ``-word`` and ``word*`` still work). Filters
are exact: motive (children are stored with their parent, so a parent id finds its children's
documents too), a time window (``7d``, ``24h``, ``2w`` or an ISO date), and a source matched
against the source id, the outlet name and, for articles, every outlet that carried a copy.
Near-duplicate copies of an article are left out: their original is shown once. Every row links
to the article's canonical URL (the feed's link may carry ``utm_*`` and other tracking
parameters): a claim row reads it from its article, because claims indexed from older articles
hold the feed's link.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pipeline.errors import ConfigError, ServiceError
from pipeline.es.client import mapped_errors
from pipeline.settings import Settings

__all__ = ["parse_since", "search", "validate_motive"]

_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_MOTIVE_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")

# kind -> (time field, fields searched with boosts, fields matched by --source, result fields)
_KINDS: dict[str, dict[str, Any]] = {
    "articles": {
        "time": "published",
        "fields": ["title^3", "summary^2", "text"],
        "source": ["source_id", "source_name", "outlets"],
        "source_fields": ["id", "title", "source_name", "source_id", "published", "fetched",
                          "motives", "topic_score", "on_topic", "canonical_url", "url", "outlets",
                          "language"],
    },
    "claims": {
        "time": "first_seen",
        "fields": ["text^2", "title"],
        "source": ["source_id", "source_name", "outlet", "corroborating_outlets"],
        "source_fields": ["id", "text", "title", "outlet", "source_name", "source_id", "first_seen",
                          "motives", "score", "novelty", "url", "article_id", "cluster_id",
                          "has_figures", "hedged", "attribution"],
    },
}


def parse_since(value: str | date | datetime | None, *, now: datetime | None = None) -> datetime | None:
    """``7d``, ``24h``, ``90m``, ``2w`` (before ``now``) or an ISO date/datetime -> aware UTC datetime.

    Raises ``ConfigError`` naming the accepted forms, because this comes from a person's typing.
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = value.strip().lower()
    match = re.fullmatch(r"(\d+)\s*([mhdw])", text)
    if match:
        if now is None:
            now = datetime.now(UTC)
        return now - timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"cannot read {value!r} as a time: use 30m, 24h, 7d, 2w or an ISO date "
                          "such as 2025-01-31", field="since") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def validate_motive(motive: str, known: list[str] | None = None) -> str:
    """A motive id as stored (``hard_currency``, ``military_technology.naval``), or ConfigError."""
    motive = motive.strip()
    if not _MOTIVE_ID.match(motive):
        raise ConfigError(f"{motive!r} is not a motive id (lower-case words joined by _ or .)",
                          field="motive")
    if known is not None and motive not in known:
        raise ConfigError(f"unknown motive {motive!r}; known: {', '.join(known)}", field="motive")
    return motive


def build_query(query: str, *, kind: str, motive: str | None = None, since: datetime | None = None,
                source: str | None = None) -> dict[str, Any]:
    """The Elasticsearch query for a search (exposed so tests and benchmarks run the same one)."""
    spec = _KINDS[kind]
    filters: list[dict[str, Any]] = []
    if motive:
        filters.append({"term": {"motives": motive}})
    if since is not None:
        filters.append({"range": {spec["time"]: {"gte": since.isoformat()}}})
    if source:
        filters.append({"bool": {"should": [{"term": {f: source}} for f in spec["source"]],
                                 "minimum_should_match": 1}})
    must: list[dict[str, Any]] = []
    if query.strip():
        must.append({"simple_query_string": {"query": query, "fields": spec["fields"],
                                             "default_operator": "and"}})
    must_not: list[dict[str, Any]] = []
    if kind == "articles":
        must_not.append({"exists": {"field": "duplicate_of"}})
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters, "must_not": must_not}}


def search(settings: Settings, es: Any, query: str, *, motive: str | None = None,
           since: str | date | datetime | None = None, source: str | None = None,
           claims: bool = False, size: int = 20, now: datetime | None = None) -> list[dict[str, Any]]:
    """Search articles (or claims with ``claims=True``); best match first, newest first without words.

    Returns one flat dict per hit: ``id``, ``kind``, ``title`` (the claim text for claims),
    ``source``, ``time``, ``motives``, ``score`` (relevance, or None when sorted by time),
    ``url``, ``snippet`` (a highlighted fragment, ``**`` marks the match) and ``fields`` (the
    stored fields that were read).
    """
    if size < 1:
        raise ConfigError(f"size must be at least 1, got {size}", field="size")
    kind = "claims" if claims else "articles"
    spec = _KINDS[kind]
    if motive:
        motive = validate_motive(motive)
    body_query = build_query(query, kind=kind, motive=motive, since=parse_since(since, now=now),
                             source=source.strip() if source else None)
    has_words = bool(query.strip())
    sort: list[Any] = (["_score", {spec["time"]: {"order": "desc", "missing": "_last"}}] if has_words
                       else [{spec["time"]: {"order": "desc", "missing": "_last"}}])
    index = settings.index(kind)
    from elasticsearch import NotFoundError

    try:
        with mapped_errors(f"search {index}"):
            resp = es.search(
                index=index, query=body_query, size=size, sort=sort, track_scores=has_words,
                source_includes=spec["source_fields"],
                highlight={"fields": {"text": {"fragment_size": 160, "number_of_fragments": 1}},
                           "pre_tags": ["**"], "post_tags": ["**"]} if has_words else None,
            )
    except ServiceError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            raise ServiceError(f"{index} does not exist yet: run `newswatch es migrate` and ingest "
                               "some articles first") from exc
        raise
    hits = resp["hits"]["hits"]
    canonical = _article_urls(settings, es, hits) if kind == "claims" else {}
    return [_row(hit, kind, has_words, canonical) for hit in hits]


def _article_urls(settings: Settings, es: Any, hits: list[dict[str, Any]]) -> dict[str, str]:
    """Canonical URL by article id for the articles of these claim hits (one request)."""
    from elasticsearch import NotFoundError

    ids = sorted({str(h["_source"]["article_id"]) for h in hits if h.get("_source", {}).get("article_id")})
    if not ids:
        return {}
    index = settings.index("articles")
    try:
        with mapped_errors(f"reading the links of {len(ids)} articles from {index}"):
            resp = es.mget(index=index, ids=ids, source_includes=["canonical_url"])
    except ServiceError as exc:
        if isinstance(exc.__cause__, NotFoundError):
            return {}  # no articles index: the claims' own links are all there is
        raise
    return {d["_id"]: d["_source"]["canonical_url"] for d in resp["docs"]
            if d.get("found") and d.get("_source", {}).get("canonical_url")}


def _row(hit: dict[str, Any], kind: str, has_words: bool, canonical: dict[str, str]) -> dict[str, Any]:
    src = hit.get("_source", {})
    snippet = (hit.get("highlight", {}).get("text") or [""])[0]
    if kind == "articles":
        title = src.get("title") or ""
        source = src.get("source_name") or src.get("source_id") or ""
        time = src.get("published") or src.get("fetched")
        url = src.get("canonical_url") or src.get("url") or ""
    else:
        title = src.get("text") or ""
        source = src.get("outlet") or src.get("source_name") or src.get("source_id") or ""
        time = src.get("first_seen")
        url = canonical.get(str(src.get("article_id") or "")) or src.get("url") or ""
    return {
        "id": hit["_id"], "kind": kind[:-1], "title": title, "source": source, "time": time,
        "motives": list(src.get("motives") or []),
        "score": hit.get("_score") if has_words else None, "url": url, "snippet": snippet,
        "fields": src,
    }
