"""``dag.test()`` of each DAG, in pipeline order, against the real Elasticsearch, a real SMTP server
and the sample feed server on 127.0.0.1; each DAG is run twice for the same logical date and the
second run must change nothing and send nothing.

The tasks run in this process (``dag.test`` does not fork), so they see the connections and the
``NEWSWATCH_*`` variables set here, exactly as the local stack exports them to Airflow.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from pipeline.es.schema import drop_prefix
from pipeline.settings import Settings
from pipeline.stack import airflow as airflow_stack
from pipeline.stack.feedserver import SampleFeedServer
from pipeline.stack.ports import free_port
from pipeline.stack.smtp import MailCatcher

# The first deployment report, its syndicated copy from a second outlet, and a pay-per-soldier
# analysis: on-topic items with claims, a duplicate that must not be alerted twice.
ITEMS = ("nw-first-contingent", "ch-first-contingent", "eo-the-price-of-a-brigade")
T = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
OPERATOR_SUBJECT = "[newswatch] Airflow"

from newswatch_airflow import ARTICLES, CLAIMS  # noqa: E402 - plugins/ joins sys.path in conftest


@dataclass
class Chain:
    settings: Settings
    es: Any
    mail: MailCatcher
    feeds: SampleFeedServer
    dagbag: Any


def write_sources(path: Path, feeds: SampleFeedServer, outlets: list[str]) -> Path:
    lines = ["defaults:", "  kind: rss", "  language: en", "  poll_minutes: 1", "  allow_private: true",
             "  timeout: 10", "sources:"]
    for outlet in outlets:
        lines += [f"  - id: {outlet}", f"    name: {outlet} (sample)", f"    url: {feeds.feed_url(outlet)}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_subscriptions(path: Path) -> Path:
    path.write_text("subscriptions:\n"
                    "  - id: desk\n"
                    "    recipients: [desk@example.org]\n"
                    "    mode: both\n"
                    "    min_score: 0\n")
    return path


@pytest.fixture(scope="module")
def chain(airflow_db, dagbag, es, base_settings: Settings, tmp_path_factory) -> Iterator[Chain]:
    from pipeline.demo import load_sample

    tmp = tmp_path_factory.mktemp("dag-runs")
    sample = load_sample()
    subset = replace(sample, items=tuple(sample.by_id(i) for i in ITEMS))
    feeds = SampleFeedServer(sample=subset, dates="original").start()
    feeds.release(len(ITEMS))
    mail = MailCatcher(tmp / "mail", free_port()).start()
    prefix = f"test-dag-{uuid.uuid4().hex[:8]}"
    settings = replace(
        base_settings, index_prefix=prefix, state_dir=tmp / "state", allow_private_hosts=True,
        smtp=replace(base_settings.smtp, port=mail.port),
        sources_path=write_sources(tmp / "sources.yaml", feeds, sorted({i.outlet for i in subset.items})),
        subscriptions_path=write_subscriptions(tmp / "subscriptions.yaml"),
    )
    env = airflow_stack.environment(settings)
    keys = [k for k in env if k.startswith(("NEWSWATCH_", "AIRFLOW_CONN_"))]
    with pytest.MonkeyPatch.context() as mp:
        for key in keys:
            mp.setenv(key, env[key])
        mp.setenv("NEWSWATCH_OPERATOR_EMAIL", "ops@example.org")
        yield Chain(settings, es, mail, feeds, dagbag)
    mail.stop()
    feeds.stop()
    drop_prefix(es, prefix)


def run(chain: Chain, dag_id: str, logical_date: datetime) -> tuple[Any, dict[str, str]]:
    """Run the DAG in-process; return the run and {task_id: state} (mapped tasks: the worst)."""
    from airflow.utils.session import create_session

    dag_run = chain.dagbag.dags[dag_id].test(logical_date=logical_date)
    with create_session() as session:
        tis = dag_run.get_task_instances(session=session)
        states = {}
        for ti in tis:
            states.setdefault(ti.task_id, []).append(str(ti.state))
    worst = {k: sorted(v, key=lambda s: s != "failed")[0] for k, v in states.items()}
    return dag_run, worst


def asset_events(dag_run: Any) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra).join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_run.dag_id, AssetEvent.source_run_id == dag_run.run_id)
        ).all()
    return [{"uri": uri, "extra": extra} for uri, extra in rows]


def docs(chain: Chain, kind: str, query: dict | None = None) -> list[dict]:
    alias = chain.settings.index(kind)
    if not chain.es.indices.exists_alias(name=alias):
        return []
    chain.es.indices.refresh(index=alias)
    res = chain.es.search(index=alias, query=query or {"match_all": {}}, size=500)
    return [h["_source"] | {"_id": h["_id"]} for h in res["hits"]["hits"]]


def alert_mail(chain: Chain) -> list[Any]:
    return [m for m in chain.mail.messages() if not str(m["Subject"]).startswith(OPERATOR_SUBJECT)]


def test_ingest_indexes_the_feed_and_announces_the_articles(chain):
    dag_run, states = run(chain, "newswatch_ingest", T)
    assert str(dag_run.state) == "success", states
    assert states == {"plan_batches": "success", "poll": "success", "reconcile": "success",
                      "announce": "success"}
    articles = docs(chain, "articles")
    assert len(articles) == len(ITEMS)
    assert {a["status"] for a in articles} == {"extracted"}
    copies = [a for a in articles if a.get("duplicate_of")]
    assert len(copies) == 1  # the syndicated copy points at the wire original
    [event] = asset_events(dag_run)
    assert event["uri"] == ARTICLES.uri
    assert event["extra"]["new_articles"] >= len(ITEMS) - 1
    assert event["extra"]["sources_failed"] == 0

    again, states = run(chain, "newswatch_ingest", T)
    assert str(again.state) == "success"
    assert states["announce"] == "skipped"  # nothing new: no event, the classify DAG is not woken
    assert asset_events(again) == []
    assert sorted(a["_id"] for a in docs(chain, "articles")) == sorted(a["_id"] for a in articles)


def test_classify_labels_the_articles_and_indexes_claims(chain):
    dag_run, states = run(chain, "newswatch_classify", T)
    assert str(dag_run.state) == "success", states
    articles = docs(chain, "articles")
    originals = [a for a in articles if not a.get("duplicate_of")]
    assert {a["status"] for a in originals} == {"classified"}
    assert all(a["on_topic"] for a in originals)
    claims = docs(chain, "claims")
    assert claims and all(c["text"] and c["first_seen"].startswith("2026-03-02T12:00") for c in claims)
    assert {c["article_id"] for c in claims} <= {a["_id"] for a in originals}
    [event] = asset_events(dag_run)
    assert event["uri"] == CLAIMS.uri and event["extra"]["claims"] == len(claims)

    again, states = run(chain, "newswatch_classify", T)
    assert str(again.state) == "success"
    assert states["extract_claims"] == "skipped" and asset_events(again) == []
    assert sorted(c["_id"] for c in docs(chain, "claims")) == sorted(c["_id"] for c in claims)


def test_alerts_send_each_new_claim_in_one_email_and_never_twice(chain):
    dag_run, states = run(chain, "newswatch_alerts", T)
    assert str(dag_run.state) == "success", states
    claims = docs(chain, "claims")
    assert all(c.get("novelty_checked") for c in claims)
    new_clusters = {c["cluster_id"] for c in claims if c.get("novelty") in {"new", "update"}}
    events = docs(chain, "alerts", {"term": {"kind": "event"}})
    assert {e["cluster_id"] for e in events} == new_clusters and new_clusters
    bundles = docs(chain, "alerts", {"term": {"kind": "bundle"}})
    sent = [b for b in bundles if b["status"] == "sent"]
    assert len(sent) == len(bundles) > 0
    assert sorted(i for b in bundles for i in b["items"]) == sorted(e["_id"] for e in events)
    received = alert_mail(chain)
    assert sorted(str(m["Message-ID"]) for m in received) == sorted(b["message_id"] for b in sent)
    assert all(m["To"] == "desk@example.org" for m in received)

    again, _ = run(chain, "newswatch_alerts", T)
    assert str(again.state) == "success"
    assert len(alert_mail(chain)) == len(received)
    assert len(docs(chain, "alerts", {"term": {"kind": "bundle"}})) == len(bundles)


def test_digest_sends_the_day_once(chain):
    before = len(alert_mail(chain))
    dag_run, states = run(chain, "newswatch_digest", T + timedelta(days=1))
    assert str(dag_run.state) == "success", states
    digests = alert_mail(chain)[before:]
    assert len(digests) == 1 and digests[0]["To"] == "desk@example.org"

    again, _ = run(chain, "newswatch_digest", T + timedelta(days=1))
    assert str(again.state) == "success"
    assert len(alert_mail(chain)) == before + 1
    assert not [m for m in chain.mail.messages() if str(m["Subject"]).startswith(OPERATOR_SUBJECT)]


def test_a_task_that_fails_for_good_emails_the_operators(chain, tmp_path):
    """A broken sources file fails the first ingest task; its notifier mails the operators once."""
    from airflow.dag_processing.dagbag import DagBag

    from tests.dags.conftest import REPO

    broken = tmp_path / "sources.yaml"
    broken.write_text("sources:\n  - id: Not An Id!\n    url: ftp://example.org/feed\n")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NEWSWATCH_TASK_RETRIES", "0")  # read when the DAG file is parsed
        mp.setenv("NEWSWATCH_SOURCES_FILE", str(broken))
        dag = DagBag(dag_folder=str(REPO / "dags" / "ingest.py")).dags["newswatch_ingest"]
        assert dag.get_task("plan_batches").retries == 0
        before = len(chain.mail.messages())
        dag_run = dag.test(logical_date=T + timedelta(hours=1))
    assert str(dag_run.state) == "failed"
    [mail] = chain.mail.messages()[before:]
    assert str(mail["Subject"]).startswith(f"{OPERATOR_SUBJECT} task failed: newswatch_ingest.plan_batches")
    assert mail["To"] == "ops@example.org"
    body = mail.get_body(("html", "plain")).get_content()
    assert "sources.yaml" in body and "plan_batches" in body
