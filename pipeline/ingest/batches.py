"""One scheduled ingest run split over parallel polls: the batches of sources, and the run's totals.

Why: the ingest DAG polls source batches in parallel tasks (one ``ingest_once`` each). What is
decided before them (which sources go together) and after them (the run's counts, with copies
that parallel polls indexed separately reconciled) lives here, so the DAG only wires tasks and an
operator can run the same steps by hand (``newswatch ingest --plan`` / ``--once`` /
``--reconcile``).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from pipeline.ingest.reconcile import reconcile_near_duplicates
from pipeline.ingest.sources import load_sources
from pipeline.settings import Settings

# The counts an ingest run reports (and puts in the extra of its articles event).
COUNTS = ("sources_polled", "sources_ok", "sources_failed", "sources_not_modified", "entries",
          "new_articles", "duplicates")


def plan_batches(settings: Settings, batches: int) -> list[list[str]]:
    """The configured source ids split into at most ``batches`` batches (round robin)."""
    ids = [source.id for source in load_sources(settings.sources_file)]
    n = max(1, min(batches, len(ids)))
    return [ids[i::n] for i in range(n)] if ids else []


def sum_reports(reports: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The totals of several ``IngestReport.as_dict()`` reports, and all their new article ids."""
    reports = list(reports)
    totals: dict[str, Any] = {key: sum(int(r.get(key, 0)) for r in reports) for key in COUNTS}
    totals["article_ids"] = [i for r in reports for i in r.get("article_ids", [])]
    return totals


def reconcile_batches(
    settings: Settings, reports: Iterable[dict[str, Any]], *, now: datetime, es: Any = None
) -> dict[str, Any]:
    """``sum_reports``, with the copies of one story that parallel polls indexed separately marked
    as duplicates (``reconcile.reconcile_near_duplicates``) and counted with the duplicates."""
    totals = sum_reports(reports)
    marked = reconcile_near_duplicates(settings, es, article_ids=totals["article_ids"], now=now)["marked"]
    totals["duplicates"] += len(marked)
    return totals
