"""Scaling out: a 1,000-feed first poll through Airflow with two Celery workers against the
LocalExecutor on this same machine, and the per-worker figures the README's capacity model uses.

    python benchmarks/bench_scale.py [--feeds 1000] [--items 5] [--rounds 1] [--skip-airflow]

Part 1 (needs PostgreSQL and Redis, see README "Scaling out"): SYNTHETIC feeds (random words,
bench_ingest's generator) served by a loopback server; the ``newswatch_ingest`` DAG is triggered
once on the single-machine stack (``airflow standalone``, LocalExecutor, 4 slots) and once on the
scaled stack (PostgreSQL, Redis, scheduler, API server, dag-processor, an io worker with 4 slots
and a cpu worker), both with ``NEWSWATCH_INGEST_BATCHES=4``. The time is the DAG run's own
(start to end, as the scheduler records it). The two cores are shared, so the ratio shows the
overhead of the scaled set-up, not a speed-up; target: Celery / Local <= 1.0.

Part 2, per worker process (one process, this machine's 2 cores), in this process:
feeds polled per minute (a feed-only first poll of the same feeds), articles extracted per
minute (page text of generated article pages), sentences classified per second and claims checked
per second (the bundled sample items through classify, claim extraction and novelty), and
Elasticsearch documents per second (bulk writes of article documents). Indices use a
``bench-scale-<random>`` prefix and are deleted at the end; every service started is stopped.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ingest import generate, serve  # noqa: E402

from pipeline.es.client import build_client  # noqa: E402
from pipeline.es.schema import drop_prefix, ensure_indices  # noqa: E402
from pipeline.settings import Settings, load_settings  # noqa: E402

DAG = "newswatch_ingest"
QUIET_CRON = "0 0 1 1 *"  # no scheduled run during the measurement: the run is triggered


def sources_yaml(port: int, feeds: int) -> str:
    lines = ["defaults:", "  kind: rss", "  language: en", "  poll_minutes: 1440", "  allow_private: true",
             "  fetch_articles: false", "  timeout: 30", "sources:"]
    for f in range(feeds):
        lines += [f"  - id: bench-{f}", f"    name: Sample {f}", f"    url: http://127.0.0.1:{port}/feed{f}.xml"]
    return "\n".join(lines) + "\n"


def _ts(value: object) -> datetime:
    text = str(value).replace(" ", "T")
    when = datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _wait_run(query: callable, timeout: float) -> tuple[float, str]:  # type: ignore[valid-type]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = query()
        done = [r for r in rows if r[0] in ("success", "failed")]
        if done:
            state, start, end = done[0]
            return (_ts(end) - _ts(start)).total_seconds(), state
        time.sleep(2)
    raise TimeoutError(f"the {DAG} run did not finish within {timeout:.0f}s")


def run_local(settings: Settings, timeout: float) -> tuple[float, str]:
    from pipeline.stack import airflow as airflow_stack

    os.environ["NEWSWATCH_AIRFLOW_PARALLELISM"] = "4"
    airflow_stack.start(settings)
    try:
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "trigger", DAG],
                       env=airflow_stack.environment(settings), check=True, capture_output=True, timeout=180)
        db = airflow_stack.home(settings) / "airflow.db"

        def query() -> list[tuple]:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
                return conn.execute("SELECT state, start_date, end_date FROM dag_run WHERE dag_id = ? "
                                    "AND run_type = 'manual'", (DAG,)).fetchall()
        return _wait_run(query, timeout)
    finally:
        airflow_stack.stop(settings)


def run_celery(settings: Settings, timeout: float) -> tuple[float, str, dict]:
    from pipeline.stack import registry
    from pipeline.stack.airflow_celery import scale_environment
    from pipeline.stack.postgres import USER, pg_port, postgres_bin

    names = ["postgres", "redis", "airflow-api", "airflow-scheduler", "airflow-dag-processor",
             "worker-io", "worker-cpu"]
    started = []
    try:
        for svc in registry.services(settings, names):
            started.append(svc.name)
            svc.start()
        subprocess.run([str(Path(sys.executable).parent / "airflow"), "dags", "trigger", DAG],
                       env=scale_environment(settings), check=True, capture_output=True, timeout=180)

        def sql(text: str) -> list[tuple]:
            out = subprocess.run([str(postgres_bin("psql")), "-h", "127.0.0.1", "-p", str(pg_port()), "-U",
                                  USER, "-d", "airflow", "-tAF", "|", "-c", text], capture_output=True,
                                 text=True, check=True, timeout=30).stdout
            return [tuple(line.split("|")) for line in out.splitlines() if line]

        runs = (f"SELECT state, start_date, end_date FROM dag_run WHERE dag_id = '{DAG}' "
                "AND run_type = 'manual'")
        seconds, state = _wait_run(lambda: sql(runs), timeout)
        polls = sql(f"SELECT min(start_date), max(end_date), count(*) FROM task_instance "
                    f"WHERE dag_id = '{DAG}' AND task_id = 'poll' AND queue = 'io'")
        first, last, n = polls[0]
        return seconds, state, {"poll_tasks": int(n), "poll_wall_s": (_ts(last) - _ts(first)).total_seconds()}
    finally:
        registry.down(settings, started)


def per_worker(settings: Settings, es, feed_dir: Path, feeds: int, port: int) -> dict[str, float]:
    """Stage throughputs of one worker process on this machine."""
    from pipeline.ingest import ingest_once
    from pipeline.ingest.sources import Source

    out: dict[str, float] = {}
    # feeds polled per minute: a feed-only first poll of the generated feeds
    srcs = [Source(id=f"pw-{f}", name=f"Sample {f}", url=f"http://127.0.0.1:{port}/feed{f}.xml",
                   outlet=f"pw-{f}", allow_private=True, timeout=30.0, fetch_articles=False)
            for f in range(feeds)]
    t0 = time.perf_counter()
    report = ingest_once(settings, es, sources=srcs, fetch_articles=False, ignore_schedule=True)
    poll_s = time.perf_counter() - t0
    out["feeds_polled_per_min"] = report.sources_ok * 60 / poll_s
    out["entries_per_s"] = report.entries / poll_s

    # articles extracted per minute: page text of generated pages (the CPU part of a page fetch)
    from pipeline.ingest.extract import extract_page

    rng = random.Random(3)
    vocab = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
             for _ in range(3000)]
    pages = []
    for i in range(200):
        paras = "".join(f"<p>{' '.join(rng.choices(vocab, k=60))}.</p>" for _ in range(8))
        pages.append((f"<!doctype html><html><head><title>Sample {i}</title></head><body>"
                      f"<nav>Home</nav><article><h1>Sample {i}</h1>{paras}</article><footer>x</footer>"
                      "</body></html>").encode())
    t0 = time.perf_counter()
    for i, html in enumerate(pages):
        extract_page(html, f"http://127.0.0.1/sample/{i}")
    out["articles_extracted_per_min"] = len(pages) * 60 / (time.perf_counter() - t0)

    # sentences classified and claims checked: the sample items through the stages, in indices
    # of their own (the synthetic articles above would be classified too)
    settings = replace(settings, index_prefix=settings.index_prefix + "-sample")
    ensure_indices(es, settings)
    from pipeline.alerts import configured_subscriptions, process_new_claims
    from pipeline.claims import extract_pending_claims
    from pipeline.classify import classify_pending
    from pipeline.demo import load_sample
    from pipeline.stack.feedserver import SampleFeedServer

    sample = load_sample()
    server = SampleFeedServer(sample=sample, dates="original").start()
    try:
        server.release(len(sample.items))
        sample_sources = [Source(id=o, name=o, url=server.feed_url(o), outlet=o, allow_private=True,
                                 timeout=30.0) for o in sorted({i.outlet for i in sample.items})]
        ingest_once(settings, es, sources=sample_sources, ignore_schedule=True)
        from pipeline.classify import get_classifier

        get_classifier()  # a worker loads the model once, not per batch: not in the figure
        t0 = time.perf_counter()
        classified = classify_pending(settings, es)
        classify_s = time.perf_counter() - t0
        es.indices.refresh(index=settings.index("articles"))
        sentences = es.search(index=settings.index("articles"), size=0,
                              aggs={"n": {"sum": {"field": "sentence_count"}}})["aggregations"]["n"]["value"]
        out["sentences_classified_per_s"] = sentences / classify_s
        out["articles_classified"] = classified["classified"]
        extract_pending_claims(settings, es)
        es.indices.refresh(index=settings.index("claims"))
        claims = es.count(index=settings.index("claims"))["count"]
        t0 = time.perf_counter()
        process_new_claims(settings, es, configured_subscriptions(settings), deliver=False)
        out["claims_checked_per_s"] = claims / (time.perf_counter() - t0)
        out["claims"] = claims
    finally:
        server.stop()

    # Elasticsearch documents per second: bulk writes of article-sized documents
    from pipeline.es.bulk import bulk_write

    docs = [{"id": f"bulk-{i}", "title": f"Sample {i}", "text": " ".join(rng.choices(vocab, k=300)),
             "status": "extracted", "source_id": "bulk", "language": "en"} for i in range(5000)]
    t0 = time.perf_counter()
    bulk_write(es, settings.index("articles"), docs, refresh=False)
    out["es_docs_per_s"] = len(docs) / (time.perf_counter() - t0)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--skip-airflow", action="store_true", help="only the per-worker figures")
    args = parser.parse_args()

    base = load_settings()
    es = build_client(base)
    work = Path(tempfile.mkdtemp(prefix="newswatch-bench-scale-"))
    work.chmod(0o755)  # PostgreSQL runs as an unprivileged user when we are root
    feed_dir = work / "feeds"
    feed_dir.mkdir()
    generate(feed_dir, args.feeds, args.items)
    port_file = work / "port"
    server = multiprocessing.Process(target=serve, args=(feed_dir, port_file), daemon=True)
    server.start()
    while not port_file.exists():
        time.sleep(0.05)
    port = int(port_file.read_text())
    sources = work / "sources.yaml"
    sources.write_text(sources_yaml(port, args.feeds))
    from pipeline.stack.ports import free_port

    env = {"NEWSWATCH_INGEST_SCHEDULE": QUIET_CRON, "NEWSWATCH_CLASSIFY_CATCHUP_SCHEDULE": QUIET_CRON,
           "NEWSWATCH_ALERT_RETRY_SCHEDULE": QUIET_CRON, "NEWSWATCH_INGEST_BATCHES": "4",
           "NEWSWATCH_IO_CONCURRENCY": "4", "NEWSWATCH_CPU_CONCURRENCY": "1"}
    os.environ.update(env)
    prefixes = []
    results: dict[str, list[float]] = {"local": [], "celery": []}
    extra = {}
    try:
        if not args.skip_airflow:
            for r in range(args.rounds):
                for kind in ("local", "celery"):
                    prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
                    prefixes.append(prefix)
                    state = work / f"state-{kind}-{r}"
                    state.mkdir()
                    os.environ.update({"NEWSWATCH_AIRFLOW_PORT": str(free_port()),
                                       "NEWSWATCH_PG_PORT": str(free_port()),
                                       "NEWSWATCH_REDIS_PORT": str(free_port()),
                                       "NEWSWATCH_WORKER_LOG_PORT": str(free_port())})
                    settings = replace(base, index_prefix=prefix, state_dir=state, allow_private_hosts=True,
                                       sources_path=sources)
                    if kind == "local":
                        seconds, status = run_local(settings, args.timeout)
                    else:
                        seconds, status, extra = run_celery(settings, args.timeout)
                    es.indices.refresh(index=settings.index("articles"))
                    n = es.count(index=settings.index("articles"))["count"]
                    print(f"round {r + 1} {kind:>6}: {DAG} run {status} in {seconds:.1f}s, "
                          f"{n} articles from {args.feeds} feeds", flush=True)
                    results[kind].append(seconds)
            local, celery = min(results["local"]), min(results["celery"])
            print(f"\n{args.feeds}-feed first poll: LocalExecutor {local:.1f}s, two Celery workers "
                  f"{celery:.1f}s; Celery / Local = {celery / local:.2f} (target <= 1.0)")
            if extra:
                print(f"io worker: {extra['poll_tasks']} poll tasks over {extra['poll_wall_s']:.1f}s = "
                      f"{args.feeds * 60 / extra['poll_wall_s']:.0f} feeds/min (4 slots)")
        prefix = f"bench-scale-{uuid.uuid4().hex[:8]}"
        prefixes += [prefix, f"{prefix}-sample"]
        settings = replace(base, index_prefix=prefix, state_dir=work / "state-worker",
                           allow_private_hosts=True)
        ensure_indices(es, settings)
        figures = per_worker(settings, es, feed_dir, args.feeds, port)
        print("\nper worker process (2 cores):")
        for key, value in figures.items():
            print(f"  {key:<28} {value:,.1f}")
        print(json.dumps({"local_s": results["local"], "celery_s": results["celery"], **figures}))
    finally:
        server.terminate()
        for prefix in prefixes:
            drop_prefix(es, prefix)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
