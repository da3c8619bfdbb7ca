"""The pipeline on the scaled stack (CeleryExecutor, PostgreSQL, Redis, an io and a cpu worker):
the sample items give the same alert emails as the pipeline's stages run one after the other on a
single machine, each email once; then the cpu worker is killed (SIGKILL, with the task it runs)
in the middle of classifying the next item, a new worker takes over, and that item is neither
lost nor alerted twice."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipeline.demo import load_sample
from pipeline.es.schema import drop_prefix
from pipeline.settings import Settings
from pipeline.stack.feedserver import SampleFeedServer
from pipeline.stack.ports import free_port
from pipeline.stack.postgres import USER, pg_port, postgres_bin
from pipeline.stack.processes import pid_alive, read_pid
from pipeline.stack.smtp import MailCatcher, read_maildir
from tests.e2e.support import SUBSCRIBER, desk_settings, settled, wait_until
from tests.scale.support import ScaledStack, require_scale_binaries, scaled_stack

pytestmark = [pytest.mark.scale, pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(1200)]

FIRST = ("nw-first-contingent", "eo-the-price-of-a-brigade")
# released while the cpu worker is killed: an on-topic report with a new figure
NEXT = "nw-pentagon-ten-thousand"


def alert_outcome(es: Any, settings: Settings, maildir: Path) -> list[tuple[str, tuple[str, ...]]]:
    """Each alert email as (subject, the claims it carries as ``novelty: text``), sorted: what a
    subscriber sees, free of ids and ports that differ between two runs."""
    def docs(kind: str, query: dict | None = None) -> list[dict]:
        alias = settings.index(kind)
        es.indices.refresh(index=alias)
        hits = es.search(index=alias, query=query or {"match_all": {}}, size=1000,
                         source_excludes=["embedding", "payload"])["hits"]["hits"]
        return [h["_source"] | {"_id": h["_id"]} for h in hits]

    claims = {c["_id"]: c for c in docs("claims")}
    events = {e["_id"]: e for e in docs("alerts", {"term": {"kind": "event"}})}
    subjects = {str(m["Message-ID"]): str(m["Subject"]) for m in read_maildir(maildir)}
    out = []
    for bundle in docs("alerts", {"term": {"kind": "bundle"}}):
        carried = tuple(sorted(f"{claims[events[i]['claim_id']].get('novelty')}: "
                               f"{claims[events[i]['claim_id']]['text']}" for i in bundle["items"]))
        out.append((subjects[bundle["message_id"]], carried))
    return sorted(out)


def single_machine_reference(base: Settings, es: Any, tmp: Path, waves: list[tuple[str, ...]],
                             feed_port: int) -> list[list[tuple[str, tuple[str, ...]]]]:
    """The same items through the same stage functions the DAG tasks call, in this process, one
    stage after the other: what the single-machine stack delivers. The outcome after each wave.

    The feeds are served on ``feed_port``, the port the scaled run serves them on later: the
    article ids hash the URLs, and the order claims are checked in (which of two restatements
    is "new") follows the ids."""
    from pipeline.alerts import bundle_and_send, configured_subscriptions, process_new_claims
    from pipeline.claims import extract_pending_claims
    from pipeline.classify import classify_pending
    from pipeline.ingest import ingest_once

    sample = load_sample()
    subset = replace(sample, items=tuple(sample.by_id(i) for wave in waves for i in wave))
    feeds = SampleFeedServer(port=feed_port, sample=subset, dates="original").start()
    mail = MailCatcher(tmp / "ref-mail", free_port()).start()
    prefix = f"test-ref-{uuid.uuid4().hex[:8]}"
    settings = desk_settings(base, tmp, feeds, mail, sorted({i.outlet for i in subset.items}),
                             prefix=prefix, state_dir=tmp / "ref-state", name="ref-")
    outcomes = []
    try:
        for wave in waves:
            feeds.release(len(wave))
            now = datetime.now(UTC)
            ingest_once(settings, now=now, ignore_schedule=True)  # the sources poll every minute
            classify_pending(settings, now=now)
            extract_pending_claims(settings, now=now)
            subs = configured_subscriptions(settings)
            process_new_claims(settings, es, subs, now=now)
            bundle_and_send(settings, es, subs, now=now)
            outcomes.append(alert_outcome(es, settings, mail.maildir))
    finally:
        mail.stop()
        feeds.stop()
        drop_prefix(es, prefix)
    return outcomes


def running_tasks(queue: str) -> list[tuple[str, str]]:
    """(dag_id, task_id) of the task instances running on ``queue``, from the metadata database."""
    out = _sql(f"SELECT dag_id, task_id FROM task_instance WHERE state = 'running' AND queue = '{queue}'")
    return [tuple(line.split(",", 1)) for line in out.split() if line]  # type: ignore[misc]


def max_try(queue: str) -> int:
    return int(_sql(f"SELECT coalesce(max(try_number), 0) FROM task_instance WHERE queue = '{queue}'"))


def _sql(sql: str) -> str:
    proc = subprocess.run([str(postgres_bin("psql")), "-h", "127.0.0.1", "-p", str(pg_port()), "-U", USER,
                           "-d", "airflow", "-tAF", ",", "-c", sql], capture_output=True, text=True,
                          timeout=20, check=True)
    return proc.stdout.strip()


def kill_worker(stack: ScaledStack, queue: str) -> int:
    """SIGKILL the worker and everything in its process group (its pool and the task it runs)."""
    pid = read_pid(stack.worker(queue).pid_file)
    assert pid, f"the {queue} worker is not running"
    os.killpg(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid) or _reap(pid), 30, "the killed worker to exit", 0.5)
    return pid


def _reap(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return not pid_alive(pid)


def test_scaled_stack_same_alerts_and_worker_killed_mid_task(base_settings, es, tmp_path):
    require_scale_binaries()
    feed_port = free_port()
    reference = single_machine_reference(base_settings, es, tmp_path, [FIRST, (NEXT,)], feed_port)
    assert reference[0], "the single-machine run sent no alert: nothing to compare"

    sample = load_sample()
    subset = replace(sample, items=tuple(sample.by_id(i) for i in (*FIRST, NEXT)))
    with scaled_stack(base_settings, es, tmp_path, subset, feed_port=feed_port) as stack:
        started = time.monotonic()
        stack.release(len(FIRST))
        wait_until(lambda: settled(stack, len(FIRST)), 480, "the first items to be classified and alerted")
        first_wave = time.monotonic() - started
        messages = stack.alert_messages()
        assert alert_outcome(es, stack.settings, stack.mail.maildir) == reference[0]
        assert len({str(m["Message-ID"]) for m in messages}) == len(messages)
        assert all(m["To"] == SUBSCRIBER for m in messages)

        # the next item: kill the cpu worker while it classifies it, then start a new one
        stack.release(1)
        wait_until(lambda: running_tasks("cpu"), 240, "a classification task to run on the cpu worker", 0.5)
        killed_at = time.monotonic()
        killed = kill_worker(stack, "cpu")
        stack.worker("cpu").stop()  # clears its pid file; the process is already gone
        stack.worker("cpu").start()
        wait_until(lambda: settled(stack, len(FIRST) + 1), 480, "the killed task to be retried and alerted")
        recovery = time.monotonic() - killed_at

        articles = [a for a in stack.docs("articles") if not a.get("duplicate_of")]
        assert len(articles) == len(FIRST) + 1, "an article was lost"
        messages = stack.alert_messages()
        assert len({str(m["Message-ID"]) for m in messages}) == len(messages), "an email was sent twice"
        bundles = stack.docs("alerts", {"term": {"kind": "bundle"}})
        assert len(messages) == len(bundles)
        outcome = alert_outcome(es, stack.settings, stack.mail.maildir)
        assert outcome == reference[1], "the scaled run's alerts differ from the single-machine run's"
        assert stack.operator_messages() == [], "a task failed for good"
        assert max_try("cpu") >= 2, "no cpu task was retried: the kill did not hit a running task"
        print(f"\nscaled stack: first wave settled in {first_wave:.0f}s; worker {killed} killed, "
              f"recovered in {recovery:.0f}s; {len(messages)} alert emails, same as single-machine")
