"""
### newswatch: digest

Once a day, one email per digest subscriber: the new claims of the previous day (UTC) per motive,
with a chart.

* **Schedule**: `NEWSWATCH_DIGEST_SCHEDULE` (default 07:00 UTC daily), no catch-up.
* **The day** is the one before the run's logical date, so a re-run or a backfill of a date
  digests the same day, and the alert ledger makes sure it is sent once.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.sdk import dag, get_current_context, task
from newswatch_airflow import default_args, env_schedule, run_time, settings_from_airflow


@dag(
    dag_id="newswatch_digest",
    schedule=env_schedule("NEWSWATCH_DIGEST_SCHEDULE", "0 7 * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["newswatch", "digest"],
    doc_md=__doc__,
)
def newswatch_digest():
    @task
    def send_digests() -> dict:
        from pipeline.alerts import configured_subscriptions
        from pipeline.alerts import send_digests as send
        from pipeline.es.client import build_client

        when = run_time(get_current_context())
        settings = settings_from_airflow()
        return send(settings, build_client(settings), configured_subscriptions(settings),
                    day=(when - timedelta(days=1)).date(), now=when)

    send_digests()


newswatch_digest()
