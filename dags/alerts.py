"""
### newswatch: alerts

Checks the new claims for novelty against the known claim clusters, writes one alert document per
(cluster, subscription) with `create`-only ids, and emails the immediate ones; then retries the
alerts still pending (e.g. SMTP was down).

* **Schedule**: on `newswatch://claims` events, or every `NEWSWATCH_ALERT_RETRY_SCHEDULE`
  (default every 10 minutes) so pending alerts are retried when no new claim arrives.
* **Never twice**: an alert document is created once and marked sent after the SMTP server
  accepted it, so re-running a run or a retried task sends nothing again.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task
from newswatch_airflow import CLAIMS, default_args, env_schedule, run_time, settings_from_airflow


@dag(
    dag_id="newswatch_alerts",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(env_schedule("NEWSWATCH_ALERT_RETRY_SCHEDULE", "*/10 * * * *"),
                                       timezone="UTC"),
        assets=[CLAIMS]),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["newswatch", "alerts"],
    doc_md=__doc__,
)
def newswatch_alerts():
    @task
    def process_new_claims() -> dict:
        from pipeline.alerts import process_new_claims as process

        return process(settings_from_airflow(), now=run_time(get_current_context()))

    @task
    def send_pending(processed: dict) -> dict:
        from pipeline.alerts import send_pending as send

        return send(settings_from_airflow(), now=run_time(get_current_context()))

    send_pending(process_new_claims())


newswatch_alerts()
