"""A whole local stack for the end-to-end test and the latency benchmark.

Real pieces only: Airflow (``airflow standalone`` via ``pipeline.stack.airflow``, its own
AIRFLOW_HOME and port), the harness's Elasticsearch with a unique index prefix, an SMTP server
and the sample feed server in this process, a sources file and a subscriptions file in a
temporary folder. Nothing is triggered by hand: the ingest cron (every minute here) and the
Assets drive the runs.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.demo import SampleSet, load_sample
from pipeline.es.schema import drop_prefix
from pipeline.settings import Settings
from pipeline.stack import airflow as airflow_stack
from pipeline.stack.feedserver import SampleFeedServer
from pipeline.stack.ports import free_port
from pipeline.stack.smtp import MailCatcher, read_maildir

OPERATOR_SUBJECT = "[newswatch] Airflow"
SUBSCRIBER = "desk@example.org"


@dataclass
class LocalStack:
    settings: Settings
    es: Any
    mail: MailCatcher
    feeds: SampleFeedServer
    released_at: dict[str, datetime]

    def release(self, n: int = 1) -> list[str]:
        ids = self.feeds.release(n)
        now = datetime.now(UTC)
        for item_id in ids:
            self.released_at[item_id] = now
        return ids

    def docs(self, kind: str, query: dict | None = None, size: int = 1000) -> list[dict]:
        alias = self.settings.index(kind)
        if not self.es.indices.exists_alias(name=alias):
            return []
        self.es.indices.refresh(index=alias)
        res = self.es.search(index=alias, query=query or {"match_all": {}}, size=size,
                             source_excludes=["embedding", "payload"])
        return [h["_source"] | {"_id": h["_id"]} for h in res["hits"]["hits"]]

    def alert_messages(self) -> list[Any]:
        return [m for m in read_maildir(self.mail.maildir)
                if not str(m["Subject"]).startswith(OPERATOR_SUBJECT)]

    def operator_messages(self) -> list[Any]:
        return [m for m in read_maildir(self.mail.maildir) if str(m["Subject"]).startswith(OPERATOR_SUBJECT)]

    def mail_files(self) -> list[Path]:
        return sorted((self.mail.maildir / "new").glob("*.eml"))


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 3.0) -> Any:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def settled(stack: LocalStack, n_articles: int) -> bool:
    """All articles classified, their claims checked for novelty, and every alert sent."""
    articles = [a for a in stack.docs("articles") if not a.get("duplicate_of")]
    if len(articles) < n_articles or any(a.get("status") != "classified" for a in articles):
        return False
    if any(a.get("on_topic") and not a.get("claims_extracted") for a in articles):
        return False
    claims = stack.docs("claims")
    if not claims or not all(c.get("novelty_checked") for c in claims):
        return False
    events = stack.docs("alerts", {"term": {"kind": "event"}})
    bundles = stack.docs("alerts", {"term": {"kind": "bundle"}})
    return bool(events) and all(e["status"] == "bundled" for e in events) and \
        all(b["status"] == "sent" for b in bundles) and len(stack.alert_messages()) >= len(bundles)


def sources_yaml(feeds: SampleFeedServer, outlets: list[str]) -> str:
    lines = ["# sample feeds of the in-process feed server (test data)", "defaults:", "  kind: rss",
             "  language: en", "  poll_minutes: 1", "  allow_private: true", "  timeout: 10", "sources:"]
    for outlet in outlets:
        lines += [f"  - id: {outlet}", f"    name: {outlet} (sample)", f"    url: {feeds.feed_url(outlet)}"]
    return "\n".join(lines) + "\n"


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These variables set for the block; afterwards each is back to what it was (or unset)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def desk_settings(base: Settings, tmp: Path, feeds: SampleFeedServer, mail: MailCatcher, outlets: list[str],
                  *, prefix: str, state_dir: Path, name: str = "", sources: Path | None = None) -> Settings:
    """Settings of a test run: its own index prefix and state folder, the mail catcher as SMTP,
    the sample ``outlets`` on ``feeds`` as sources (unless ``sources`` is given) and one
    subscription alerting the desk immediately on everything. ``name`` prefixes the files."""
    if sources is None:
        sources = tmp / f"{name}sources.yaml"
        sources.write_text(sources_yaml(feeds, outlets))
    subscriptions = tmp / f"{name}subscriptions.yaml"
    subscriptions.write_text(f"subscriptions:\n  - id: desk\n    recipients: [{SUBSCRIBER}]\n"
                             "    mode: immediate\n    min_score: 0\n")
    return replace(base, index_prefix=prefix, state_dir=state_dir, allow_private_hosts=True,
                   smtp=replace(base.smtp, host="127.0.0.1", port=mail.port),
                   sources_path=sources, subscriptions_path=subscriptions)


@contextmanager
def local_stack(base: Settings, es: Any, tmp: Path, sample: SampleSet | None = None, *,
                schedule: str = "* * * * *", parallelism: int = 3) -> Iterator[LocalStack]:
    """Start everything, yield, then stop everything (Airflow by process group and AIRFLOW_HOME)."""
    sample = sample or load_sample()
    feeds = SampleFeedServer(sample=sample).start()
    mail = MailCatcher(tmp / "mail", free_port()).start()
    prefix = f"test-e2e-{uuid.uuid4().hex[:8]}"
    settings = desk_settings(base, tmp, feeds, mail, sorted({i.outlet for i in sample.items}),
                             prefix=prefix, state_dir=tmp / "state")
    stack = LocalStack(settings, es, mail, feeds, {})
    variables = {"NEWSWATCH_AIRFLOW_PORT": str(free_port()), "NEWSWATCH_INGEST_SCHEDULE": schedule,
                 "NEWSWATCH_AIRFLOW_PARALLELISM": str(parallelism),
                 "NEWSWATCH_OPERATOR_EMAIL": "ops@example.org", "NEWSWATCH_RETRY_DELAY_SECONDS": "10"}
    try:
        with environment(variables):
            try:
                airflow_stack.start(settings)
                yield stack
            finally:
                airflow_stack.stop(settings)
    finally:
        mail.stop()
        feeds.stop()
        drop_prefix(es, prefix)
