"""Ingestion: configured feeds to clean, deduplicated articles in Elasticsearch.

Modules: ``sources`` (config), ``fetch`` (bounded, SSRF-guarded HTTP), ``parse`` (feedparser to
``FeedEntry``), ``canonical`` (URLs and ids), ``extract`` (trafilatura with feed fallback),
``dedup`` (MinHash near-duplicates), ``articles`` (lookups and outlet merges), ``state`` (feed
state), ``report`` (per-feed outcomes), ``poll`` (one source; ``check_sources``), ``run``
(``ingest_once``), ``reconcile`` (copies indexed by concurrent polls).
"""

from __future__ import annotations

from pipeline.ingest.parse import FeedEntry, ParsedFeed, parse_feed
from pipeline.ingest.poll import check_sources
from pipeline.ingest.reconcile import reconcile_near_duplicates
from pipeline.ingest.report import FeedResult, IngestReport
from pipeline.ingest.run import ingest_once
from pipeline.ingest.sources import Source, Topic, load_sources, load_topic

__all__ = [
    "FeedEntry",
    "FeedResult",
    "IngestReport",
    "ParsedFeed",
    "Source",
    "Topic",
    "check_sources",
    "ingest_once",
    "load_sources",
    "load_topic",
    "parse_feed",
    "reconcile_near_duplicates",
]
