"""The one way newswatch writes a point in time into a document or a query: ``iso_utc``.

Every stored time has the same shape, ``YYYY-MM-DDTHH:MM:SS.mmmZ``: UTC, millisecond precision
(Elasticsearch's ``date`` keeps no finer), a ``Z`` suffix. One shape means times written by
different stages compare as strings in the same order as in time, and Kibana and the range
queries read every one of them the same way. This module imports nothing of newswatch, so any
layer may use it.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["iso_utc"]


def iso_utc(value: datetime) -> str:
    """``2025-01-31T08:05:09.120Z`` for any datetime; a naive one is taken to be UTC already.

    Treating a naive value as UTC (not as the machine's local time) keeps the result independent
    of the host's time zone, which differs between a laptop, CI and an Airflow worker.
    """
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="milliseconds").replace("+00:00", "Z")
