"""Ingestion: configured feeds to clean, deduplicated articles in Elasticsearch.

Modules, in the order a run uses them:

- ``sources`` (the sources file), ``state`` (per-feed polling state), ``report`` (outcomes as data);
- ``fetch`` (bounded HTTP) with ``addresses`` (SSRF policy), ``connections`` (pinned connections,
  request deadlines) and ``decoding`` (bounded decompression);
- ``poll`` (one source: fetch + ``parse``; ``check_sources``), ``workers`` (parse processes, GC);
- ``decide`` (what an entry becomes) with ``pages`` (page fetch, ``extract`` strategy, canonical
  identity from ``canonical``), ``dedup``/``band_filter`` (near duplicates), ``articles``
  (lookups and outlet merges) and ``documents`` (what is indexed);
- ``writer`` (ordered writes), ``bulk_load`` (refresh pause), ``run`` (``ingest_once``, the wiring);
- ``batches`` (a scheduled run split over parallel polls) and ``reconcile`` (copies across them);
- ``library_patches``: every change newswatch makes to a third-party library.
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
