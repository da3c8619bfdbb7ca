"""What every newswatch DAG shares: owner, retries with exponential backoff, failure email,
schedules from the environment, and the one timestamp a task may use.

Retries are the recovery path: pipeline functions raise ``ServiceUnavailable`` when Elasticsearch
or SMTP is down and are idempotent, so a retry resumes where the failed try stopped.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from newswatch_airflow.notifier import failure_notifier

_CRON_FIELD = re.compile(r"^[\d*/,\-A-Za-z?LW#]+$")
_PRESETS = {"@once", "@continuous", "@hourly", "@daily", "@weekly", "@monthly", "@quarterly", "@yearly"}


def default_args() -> dict[str, Any]:
    """Task defaults; ``NEWSWATCH_TASK_RETRIES`` and ``NEWSWATCH_DAG_OWNER`` tune them."""
    return {
        "owner": os.environ.get("NEWSWATCH_DAG_OWNER", "newswatch"),
        "retries": int(os.environ.get("NEWSWATCH_TASK_RETRIES", "3")),
        "retry_delay": timedelta(seconds=float(os.environ.get("NEWSWATCH_RETRY_DELAY_SECONDS", "20"))),
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=10),
        "on_failure_callback": [failure_notifier()],
    }


def env_schedule(var: str, default: str) -> str:
    """A cron expression (or preset) from ``var``; a malformed one fails the DAG import loudly."""
    value = (os.environ.get(var) or default).strip()
    if value in _PRESETS:
        return value
    fields = value.split()
    if len(fields) not in (5, 6) or not all(_CRON_FIELD.match(f) for f in fields):
        raise ValueError(f"{var}={value!r} is not a cron expression like '*/5 * * * *'")
    return value


def run_time(context: Any) -> datetime:
    """The run's own timestamp: the logical date, or ``run_after`` for asset-triggered and manual
    runs (which have none). Retries and re-runs of a run see the same value, unlike ``now()``.

    Returned as a plain ``datetime`` in UTC: Airflow hands out pendulum objects, and pendulum
    arithmetic after ``astimezone(datetime.UTC)`` yields naive values that break comparisons in
    the pipeline."""
    when = context.get("logical_date")
    if when is None:
        when = context["dag_run"].run_after
    return datetime.fromtimestamp(when.timestamp(), tz=UTC)
