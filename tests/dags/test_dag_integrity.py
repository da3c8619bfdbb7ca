"""The DAG files: they import cleanly and fast, stay light at parse time, and follow the policy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta

import pytest

from pipeline.stack.airflow import DAG_IDS
from tests.dags.conftest import REPO

DAG_FILES = sorted(p.name for p in (REPO / "dags").glob("*.py"))
HEAVY = ("torch", "transformers", "sentence_transformers", "elasticsearch", "sklearn", "trafilatura")


def test_every_dag_file_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == sorted(DAG_IDS)
    assert DAG_FILES == ["alerts.py", "classify.py", "digest.py", "ingest.py"]


@pytest.fixture(scope="module")
def parse_report() -> dict:
    """Parse each DAG file in one fresh interpreter, like the DAG processor: the time each file
    takes and the modules each one adds to ``sys.modules``."""
    code = (
        "import json, sys\n"
        "import airflow.sdk\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "out = {}\n"
        f"for name in {DAG_FILES!r}:\n"
        "    before = set(sys.modules)\n"
        f"    bag = DagBag(dag_folder={str(REPO / 'dags')!r} + '/' + name)\n"
        "    [stat] = bag.dagbag_stats\n"
        "    out[name] = {'errors': bag.import_errors, 'seconds': stat.duration.total_seconds(),\n"
        "                 'dags': stat.dag_num, 'new': sorted(set(sys.modules) - before)}\n"
        "print(json.dumps(out))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("name", DAG_FILES)
def test_dag_file_parses_fast_and_imports_nothing_heavy(parse_report, name):
    report = parse_report[name]
    assert report["errors"] == {}
    assert report["dags"] == 1
    assert report["seconds"] < 1.0, f"{name} took {report['seconds']:.2f}s to parse"
    heavy = sorted({m.split(".")[0] for m in report["new"]} & set(HEAVY))
    assert heavy == [], f"{name} imports {heavy} at parse time"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_policy_fields(dagbag, dag_id):
    dag = dagbag.dags[dag_id]
    assert dag.doc_md and len(dag.doc_md) > 200
    assert "newswatch" in dag.tags and len(dag.tags) >= 2
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.owner == "newswatch"
    for task in dag.tasks:
        assert task.retries >= 1, task.task_id
        assert task.retry_exponential_backoff > 1
        assert task.retry_delay >= timedelta(seconds=5)
        assert task.max_retry_delay is not None
        assert task.on_failure_callback, f"{dag_id}.{task.task_id} has no failure notifier"
        assert type(task.on_failure_callback[0]).__name__ == "SmtpNotifier"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_no_cycles_and_every_task_reachable(dagbag, dag_id):
    """The DAG is acyclic (a topological order covers every task) and connected."""
    dag = dagbag.dags[dag_id]
    indegree = {t.task_id: len(t.upstream_task_ids) for t in dag.tasks}
    ready = [t for t, n in indegree.items() if n == 0]
    order = []
    while ready:
        current = ready.pop()
        order.append(current)
        for child in dag.get_task(current).downstream_task_ids:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    assert sorted(order) == sorted(indegree), f"cycle among {set(indegree) - set(order)}"
    roots = [t for t in dag.tasks if not t.upstream_task_ids]
    assert len(roots) == 1, [t.task_id for t in roots]


def test_stages_are_chained_by_assets(dagbag):
    from airflow.sdk import Asset

    articles, claims = Asset("newswatch://articles"), Asset("newswatch://claims")
    ingest, classify, alerts = (dagbag.dags[f"newswatch_{n}"] for n in ("ingest", "classify", "alerts"))
    assert articles in ingest.get_task("announce").outlets
    assert claims in classify.get_task("extract_claims").outlets
    assert {a.uri for a in classify.timetable.asset_condition.objects} == {articles.uri}
    assert {a.uri for a in alerts.timetable.asset_condition.objects} == {claims.uri}
    # the consumers also run on a timer, so a lost event or a pending alert is caught up
    assert classify.timetable.timetable.expression == "*/30 * * * *"
    assert alerts.timetable.timetable.expression == "*/10 * * * *"


def test_ingest_maps_over_source_batches(dagbag):
    dag = dagbag.dags["newswatch_ingest"]
    poll = dag.get_task("poll")
    assert type(poll).__name__ in {"MappedOperator", "_MappedOperator"} or hasattr(poll, "expand_input")
    assert dag.get_task("plan_batches").downstream_task_ids == {"poll"}
    assert poll.downstream_task_ids == {"reconcile"}
    assert dag.get_task("reconcile").downstream_task_ids == {"announce"}


def _dag_in_fresh_interpreter(env_extra: dict[str, str], dag_file: str, expr: str) -> str:
    code = ("from airflow.dag_processing.dagbag import DagBag\n"
            f"bag = DagBag(dag_folder={str(REPO / 'dags' / dag_file)!r})\n"
            "print(repr(bag.import_errors) if bag.import_errors else "
            f"next(iter(bag.dags.values())).{expr})\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, **env_extra},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip().splitlines()[-1]


def test_ingest_schedule_comes_from_the_environment(dagbag):
    assert dagbag.dags["newswatch_ingest"].timetable.expression == "*/5 * * * *"
    custom = {"NEWSWATCH_INGEST_SCHEDULE": "*/1 * * * *"}
    assert _dag_in_fresh_interpreter(custom, "ingest.py", "timetable.expression") == "*/1 * * * *"


def test_a_malformed_schedule_fails_the_import_with_the_variable_named(monkeypatch):
    from newswatch_airflow import env_schedule

    monkeypatch.setenv("NEWSWATCH_INGEST_SCHEDULE", "every minute")
    with pytest.raises(ValueError, match="NEWSWATCH_INGEST_SCHEDULE='every minute' is not a cron"):
        env_schedule("NEWSWATCH_INGEST_SCHEDULE", "*/5 * * * *")
    monkeypatch.setenv("NEWSWATCH_INGEST_SCHEDULE", "@hourly")
    assert env_schedule("NEWSWATCH_INGEST_SCHEDULE", "*/5 * * * *") == "@hourly"
    monkeypatch.delenv("NEWSWATCH_INGEST_SCHEDULE")
    assert env_schedule("NEWSWATCH_INGEST_SCHEDULE", "*/5 * * * *") == "*/5 * * * *"
