"""
### newswatch: alerts

Checks the new claims for novelty against the known claim clusters (and moves clusters to
corroborated or disputed), queues each claim event for the subscriptions that want it, gathers
the queued events into bundles (one email per article, or per batch, as each subscription says),
and emails them; then bundles and retries what is still due (e.g. SMTP was down).

* **Schedule**: on `newswatch://claims` events, or every `NEWSWATCH_ALERT_RETRY_SCHEDULE`
  (default every 10 minutes) so batched subscriptions and pending emails are served when no new
  claim arrives.
* **Never twice**: events and bundles are created once with deterministic ids, and a bundle is
  marked sent after the SMTP server accepted it, so re-running a run or a retried task sends
  nothing again.
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
        from pipeline.alerts import configured_subscriptions
        from pipeline.alerts import process_new_claims as process
        from pipeline.alerts.channels import SmtpChannel
        from pipeline.es.client import build_client

        settings = settings_from_airflow()
        with SmtpChannel(settings.smtp) as channel:
            return process(settings, build_client(settings), configured_subscriptions(settings),
                           now=run_time(get_current_context()), channel=channel)

    @task
    def send_pending(processed: dict) -> dict:
        from pipeline.alerts import bundle_and_send, configured_subscriptions
        from pipeline.alerts.channels import SmtpChannel
        from pipeline.es.client import build_client

        settings = settings_from_airflow()
        with SmtpChannel(settings.smtp) as channel:
            return bundle_and_send(settings, build_client(settings), configured_subscriptions(settings),
                                   now=run_time(get_current_context()), channel=channel)

    send_pending(process_new_claims())


newswatch_alerts()
