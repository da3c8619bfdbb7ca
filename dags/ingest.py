"""
### newswatch: ingest

Polls every configured feed (conditional GET), fetches and extracts the new articles, drops
duplicates, and indexes the rest in Elasticsearch with `status: extracted`.

* **Schedule**: cron from `NEWSWATCH_INGEST_SCHEDULE` (default every 5 minutes), no catch-up, one
  run at a time.
* **Parallelism**: the sources are split into `NEWSWATCH_INGEST_BATCHES` batches (default 2) and
  polled by mapped tasks, one per batch.
* **Copies across batches**: after all batches, copies of one story that parallel polls indexed
  separately are reconciled (the later becomes `duplicate_of` the earlier).
* **Output**: when new articles were indexed, an event on `newswatch://articles` whose extra
  holds the counts; that event schedules the *classify* DAG. No new articles, no event.
* **Safe to re-run**: article ids are hashes of canonical URLs and feed state only advances after
  the articles it covers are indexed.
"""

from __future__ import annotations

import os

from airflow.sdk import dag, get_current_context, task
from newswatch_airflow import ARTICLES, default_args, env_schedule, run_time, settings_from_airflow


@dag(
    dag_id="newswatch_ingest",
    schedule=env_schedule("NEWSWATCH_INGEST_SCHEDULE", "*/5 * * * *"),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["newswatch", "ingest"],
    doc_md=__doc__,
)
def newswatch_ingest():
    @task
    def plan_batches() -> list[list[str]]:
        """Split the configured source ids into at most NEWSWATCH_INGEST_BATCHES batches."""
        from pipeline.ingest.batches import plan_batches

        return plan_batches(settings_from_airflow(), int(os.environ.get("NEWSWATCH_INGEST_BATCHES", "2")))

    # the network-bound work (feeds, then article pages) goes to the I/O workers' queue; the
    # LocalExecutor ignores queues. The label is cut to fit Airflow's 250-character column,
    # which PostgreSQL enforces (a batch of many sources failed there, not on SQLite).
    @task(map_index_template="{{ source_ids | join(',') | truncate(200) }}", queue="io")
    def poll(source_ids: list[str]) -> dict:
        from pipeline.ingest import ingest_once
        from pipeline.ingest.extract import extractor_from_environment

        now = run_time(get_current_context())
        return ingest_once(settings_from_airflow(), source_ids=source_ids, now=now,
                           extractor=extractor_from_environment()).as_dict()

    @task
    def reconcile(reports: list[dict]) -> dict:
        """Mark copies of one story that parallel batches indexed separately; sum the reports."""
        from pipeline.ingest.batches import reconcile_batches

        return reconcile_batches(settings_from_airflow(), reports, now=run_time(get_current_context()))

    @task(outlets=[ARTICLES])
    def announce(totals: dict) -> dict:
        """Emit the articles event only when something new was indexed."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.ingest.batches import COUNTS

        if totals["new_articles"] == 0:
            raise AirflowSkipException(f"no new articles: {totals}")
        get_current_context()["outlet_events"][ARTICLES].extra = {k: totals[k] for k in COUNTS}
        return totals

    announce(reconcile(poll.expand(source_ids=plan_batches())))


newswatch_ingest()
