"""SAMPLE DATA for the Elasticsearch and Kibana tests, written for these tests (not real news).

Each document is built to sit on one side of a saved search's boundary (on/off topic, a motive
present or only on an off-topic article, a claim 23 h vs 25 h old, new/repeat/update, with and
without figures), so the expected id sets below are exact and could fail.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

NOW = datetime.now(UTC).replace(microsecond=0)


def _ago(**kw: float) -> str:
    return (NOW - timedelta(**kw)).isoformat()


def article(doc_id: str, title: str, *, source: str = "northwire", on_topic: bool | None = True,
            motives: list[str] | None = None, hours_ago: float = 24, **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": doc_id, "title": title, "text": f"Sample body text for {title}.",
        "source_id": source, "source_name": source, "outlets": [source],
        "canonical_url": f"https://example.test/{doc_id}", "url": f"https://example.test/{doc_id}",
        "published": _ago(hours=hours_ago), "fetched": _ago(hours=hours_ago - 0.5),
        "language": "en", "status": "classified" if on_topic is not None else "extracted",
        "motives": motives or [],
    }
    if on_topic is not None:
        doc["on_topic"] = on_topic
        doc["topic_score"] = 0.9 if on_topic else 0.2
    doc.update(extra)
    return doc


ARTICLES: list[dict[str, Any]] = [
    article("a-cash", "Sample: soldiers' wages flow to the state treasury", motives=["hard_currency"],
            hours_ago=30),
    article("a-subs", "Sample: submarine know-how requested in exchange", source="capital-herald",
            motives=["military_technology", "military_technology.naval"], hours_ago=50),
    article("a-front", "Sample: drone lessons and heavy losses at the front", source="eastern-observer",
            motives=["combat_experience", "costs_and_risks", "costs_and_risks.casualties"], hours_ago=5),
    article("a-treaty", "Sample: the defence pact is invoked", motives=["security_guarantees"],
            hours_ago=80),
    article("a-veto", "Sample: a veto shields the next test, and Kim enjoys the spotlight",
            source="capital-herald", motives=["diplomatic_cover", "prestige"], hours_ago=100),
    article("a-oil", "Sample: fuel and grain shipments cross the border", motives=["economic_aid"],
            hours_ago=12),
    article("a-plain", "Sample: more troops reported near the border (no motive)", hours_ago=3),
    article("a-reject", "Sample: a front-line report with no Korean angle", on_topic=False, hours_ago=7),
    # Off topic but carrying a motive label: must not show in the motive search.
    article("a-reject-aid", "Sample: grain aid to a different country", on_topic=False,
            motives=["economic_aid"], hours_ago=9, topic_score=0.45),
    # Not classified yet: neither on nor off topic.
    article("a-pending", "Sample: awaiting classification", on_topic=None, hours_ago=1),
    # A syndicated copy of a-cash: search shows the original once.
    article("a-cash-copy", "Sample: soldiers' wages flow to the state treasury", source="capital-herald",
            on_topic=None, duplicate_of="a-cash", hours_ago=29),
]

MOTIVE_SEARCH_EXPECTED = {
    "hard_currency": {"a-cash"},
    "military_technology": {"a-subs"},
    "combat_experience": {"a-front"},
    "security_guarantees": {"a-treaty"},
    "diplomatic_cover": {"a-veto"},
    "prestige": {"a-veto"},
    "economic_aid": {"a-oil"},
    "costs_and_risks": {"a-front"},
}


def claim(doc_id: str, text: str, *, novelty: str | None, hours_ago: float, figures: bool,
          outlet: str = "northwire", motives: list[str] | None = None, kind: str = "official"
          ) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "id": doc_id, "article_id": f"art-{doc_id}", "text": text, "outlet": outlet,
        "source_id": outlet, "source_name": outlet, "url": f"https://example.test/{doc_id}",
        "first_seen": _ago(hours=hours_ago), "motives": motives or ["hard_currency"],
        "has_figures": figures, "hedged": False, "novelty_checked": novelty is not None,
        "attribution": {"speaker": "a sample official", "kind": kind},
        "cluster_id": f"cl-{doc_id}",
    }
    if novelty is not None:
        doc["novelty"] = novelty
    return doc


CLAIMS: list[dict[str, Any]] = [
    claim("c-new-2h", "Sample claim: 4,000 more soldiers arrived, an official said.", novelty="new",
          hours_ago=2, figures=True) | {"importance": 0.7},
    claim("c-new-23h", "Sample claim: the treaty will be invoked, a minister said.", novelty="new",
          hours_ago=23, figures=False, motives=["security_guarantees"]),
    claim("c-new-25h", "Sample claim: a satellite launch was helped, analysts say.", novelty="new",
          hours_ago=25, figures=False, kind="analyst", motives=["military_technology"]),
    claim("c-new-old", "Sample claim: pay is routed to the state.", novelty="new", hours_ago=24 * 6,
          figures=False),
    claim("c-repeat", "Sample claim: 4,000 more soldiers arrived, another outlet says.", novelty="repeat",
          hours_ago=1, figures=True, outlet="capital-herald") | {"importance": 0.8},
    claim("c-update", "Sample claim: casualties now put at 1,200, up from several hundred.",
          novelty="update", hours_ago=5, figures=True, motives=["costs_and_risks"]) | {"importance": 0.6},
    claim("c-update-old", "Sample claim: a revised estimate of 12,000 troops.", novelty="update",
          hours_ago=24 * 10, figures=True),
    claim("c-unchecked", "Sample claim: not yet compared with known claims, 3 units.", novelty=None,
          hours_ago=1, figures=True),
]

def cluster(cid: str, status: str | None, outlets: int, hours_ago: float) -> dict[str, Any]:
    doc = {"id": cid, "text": f"Sample cluster {cid}.", "independent_outlets": outlets,
           "last_seen": _ago(hours=hours_ago), "first_seen": _ago(hours=hours_ago + 1)}
    if status is not None:
        doc |= {"status": status, "status_changed": _ago(hours=hours_ago),
                "status_history": [{"status": status, "at": _ago(hours=hours_ago), "why": "sample"}]}
    if status == "disputed":
        doc["dispute_reasons"] = ["denied by a sample ministry"]
    return doc


CLUSTERS: list[dict[str, Any]] = [
    cluster("cl-single", "single_source", 1, 2),
    cluster("cl-corroborated", "corroborated", 3, 3),
    cluster("cl-disputed", "disputed", 2, 4),
    cluster("cl-before-status", None, 2, 30),  # written before clusters had a status
]

FEEDS: list[dict[str, Any]] = [
    {"source_id": "northwire", "name": "northwire", "last_status": "ok", "consecutive_failures": 0,
     "last_poll": _ago(minutes=5), "last_success": _ago(minutes=5), "http_status": 200},
    {"source_id": "capital-herald", "name": "capital-herald", "last_status": "not_modified",
     "consecutive_failures": 0, "last_poll": _ago(minutes=6), "last_success": _ago(minutes=6),
     "http_status": 304},
    {"source_id": "eastern-observer", "name": "eastern-observer", "last_status": "error",
     "consecutive_failures": 3, "last_poll": _ago(minutes=4), "last_success": _ago(hours=3),
     "http_status": 503, "last_error": "HTTP 503 from the sample server"},
]

SAVED_SEARCH_EXPECTED: dict[str, set[str]] = {
    **{f"newswatch-search-motive-{m}": ids for m, ids in MOTIVE_SEARCH_EXPECTED.items()},
    "newswatch-search-new-claims-24h": {"c-new-2h", "c-new-23h"},
    "newswatch-search-latest-new-claims": {"c-new-2h", "c-new-23h", "c-new-25h", "c-new-old"},
    "newswatch-search-claims-with-figures": {"c-new-2h", "c-repeat", "c-update", "c-update-old",
                                             "c-unchecked"},
    "newswatch-search-updated-claims": {"c-update", "c-update-old"},
    "newswatch-search-off-topic-rejects": {"a-reject", "a-reject-aid"},
    "newswatch-search-feed-health": {"northwire", "capital-herald", "eastern-observer"},
    "newswatch-search-failing-feeds": {"eastern-observer"},
    "newswatch-search-important-claims": {"c-new-2h", "c-update"},
    "newswatch-search-cluster-status": {"cl-single", "cl-corroborated", "cl-disputed"},
    "newswatch-search-disputed-claims": {"cl-disputed"},
    "newswatch-search-corroborated-claims": {"cl-corroborated"},
}


def load_samples(es: Any, settings: Any) -> None:
    """Create the indices with the real mappings and load every sample document."""
    from pipeline.es.bulk import bulk_write
    from pipeline.es.schema import ensure_indices

    ensure_indices(es, settings)
    for kind, docs, id_field in (("articles", ARTICLES, "id"), ("claims", CLAIMS, "id"),
                                 ("feeds", FEEDS, "source_id"), ("clusters", CLUSTERS, "id")):
        report = bulk_write(es, settings.index(kind), docs, id_field=id_field, refresh=True)
        assert report.errors == [], report.errors
        assert report.ok == len(docs)
