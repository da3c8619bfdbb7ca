"""
### newswatch: classify

Classifies the articles that are not classified yet (on-topic gate, sentence motives, rolled up
with evidence), then extracts the claims of the on-topic ones and indexes them with embeddings.

* **Schedule**: on `newswatch://articles` events, or every `NEWSWATCH_CLASSIFY_CATCHUP_SCHEDULE`
  (default every 30 minutes) to catch up work whose event was lost.
* **Work is found by query** (`status: extracted`, `claims_extracted` not true), not from the
  event, so runs may merge or be missed without losing an article.
* **Output**: an event on `newswatch://claims` with the counts when new claims were indexed; it
  schedules the *alerts* DAG.
"""

from __future__ import annotations

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag, get_current_context, task
from newswatch_airflow import ARTICLES, CLAIMS, default_args, env_schedule, run_time, settings_from_airflow


@dag(
    dag_id="newswatch_classify",
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(env_schedule("NEWSWATCH_CLASSIFY_CATCHUP_SCHEDULE", "*/30 * * * *"),
                                       timezone="UTC"),
        assets=[ARTICLES]),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(),
    tags=["newswatch", "classify"],
    doc_md=__doc__,
)
def newswatch_classify():
    # model inference goes to the CPU workers' queue, whose slots match the cores; the
    # LocalExecutor ignores queues
    @task(queue="cpu")
    def classify_articles() -> dict:
        from pipeline.classify import classify_pending

        return classify_pending(settings_from_airflow(), now=run_time(get_current_context()))

    @task(outlets=[CLAIMS], queue="cpu")
    def extract_claims(classified: dict) -> dict:
        """Claims of the newly classified on-topic articles; emits the claims event if any."""
        from airflow.sdk.exceptions import AirflowSkipException

        from pipeline.claims import extract_pending_claims

        context = get_current_context()
        result = extract_pending_claims(settings_from_airflow(), now=run_time(context))
        if result["claims"] == 0:
            raise AirflowSkipException(f"no new claims: {result}")
        context["outlet_events"][CLAIMS].extra = {
            k: v for k, v in result.items() if isinstance(v, int | float | str | bool)}
        return result

    extract_claims(classify_articles())


newswatch_classify()
