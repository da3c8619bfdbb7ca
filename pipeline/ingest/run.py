"""One ingestion pass, ``ingest_once``: due sources polled, new entries turned into articles,
feed states saved last.

The stages, each in its own module; this one only wires them:

1. **due sources**: the configured sources whose next poll time has come (``state``);
2. **poll** (``poll``, ``fetch``): feed threads fetch with conditional GET; parsing and per-entry
   analysis run in parse worker processes when many feeds are due (``workers``);
3. **batch** (here): finished feeds are gathered into a batch of about BATCH_ENTRIES entries (or
   whatever BATCH_MAX_WAIT_S brought), so Elasticsearch sees few, big requests;
4. **decide** (``decide``): what each entry becomes (known, new, a copy), with the page read and
   its text extracted by the configured ``extract.Extractor`` (``pages``);
5. **write** (``writer``): one thread writes batches in order (articles, merges, feed states)
   while the main thread decides the next one;
6. **bulk-load settings** (``bulk_load``, ``workers.relaxed_gc``): a big run pauses the indices'
   refresh and collects garbage less often; the run ends with one refresh of both indices.

Elasticsearch failing raises ``ServiceUnavailable`` and the run stops with the states of unwritten
feeds not advanced. A feed failing is a ``FeedResult`` with ``status="error"``; anything
unexpected for a whole feed is that feed's ``internal_error`` (its state records the failure and
backs off, like any failing feed), and the other feeds are written as usual.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.ingest import articles as store
from pipeline.ingest.bulk_load import BULK_LOAD_MIN_FEEDS, BULK_LOAD_REFRESH, RefreshPause
from pipeline.ingest.decide import EntryDecider
from pipeline.ingest.dedup import NearDuplicateIndex
from pipeline.ingest.extract import Extractor, TrafilaturaFirst
from pipeline.ingest.fetch import Fetcher
from pipeline.ingest.pages import PageReader
from pipeline.ingest.poll import Poll, Progress, poll_source, select_sources
from pipeline.ingest.report import FeedResult, IngestReport
from pipeline.ingest.sources import Source, load_sources
from pipeline.ingest.state import FeedState, load_states
from pipeline.ingest.workers import PROCESS_POOL_MIN_FEEDS, parse_pool, relaxed_gc
from pipeline.ingest.writer import Commit, OrderedWriter
from pipeline.settings import Settings

__all__ = ["BULK_LOAD_MIN_FEEDS", "BULK_LOAD_REFRESH", "ingest_once"]

log = logging.getLogger(__name__)
MAX_PENDING_COMMITS = 8  # batches decided but not yet written: bounds memory when the index is slow
MAX_PENDING_DOCS = 5_000  # ... and the articles in them (a batch may be one feed or a hundred)
BATCH_ENTRIES = 1_000  # feed entries per batch: one lookup, one candidate query, ~two bulk requests
BATCH_FEEDS = 200  # ... or this many feeds (unchanged feeds have no entries, only a state to save)
BATCH_MAX_WAIT_S = 2.0  # ... or whatever has been polled after this long
IN_FLIGHT_PER_WORKER = 4  # feeds being fetched or parsed per worker thread, while a batch is decided


def ingest_once(
    settings: Settings,
    es: Any = None,
    *,
    source_ids: list[str] | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    force: bool = False,
    ignore_schedule: bool = False,
    fetch_articles: bool | None = None,
    sources: list[Source] | None = None,
    workers: int = 8,
    processes: int | None = 0,
    extractor: Extractor | None = None,
) -> IngestReport:
    """Poll every due source once and index its new articles (status ``extracted``).

    ``ignore_schedule`` polls sources before their next poll time; ``force`` also polls sources that
    were disabled after repeated failures (a success re-enables them); ``fetch_articles``
    overrides the sources' setting (False: feed text only); ``sources`` bypasses the sources file;
    ``extractor``: the page-text strategy (default: trafilatura, then the feed's text).
    ``processes``: worker processes for parsing and text analysis (0, the default: threads only;
    None: one per core when at least PROCESS_POOL_MIN_FEEDS feeds are due and this process may
    have children). Worker processes start by re-importing the caller's ``__main__`` (forkserver),
    so only programs with an ``if __name__ == "__main__"`` guard (the CLI, the benchmark) opt in.
    ``progress(result, done, total)`` is called in the calling thread after each polled feed's
    writes are committed. Without ``now`` the current time is used; scheduled runs pass theirs.
    """
    from pipeline.es.client import build_client
    from pipeline.es.schema import ensure_indices

    now = (now or datetime.now(UTC)).astimezone(UTC)
    es = es if es is not None else build_client(settings)
    if sources is None:
        sources = load_sources(settings.sources_file, topic_path=settings.topic_file)
    chosen = select_sources(sources, source_ids)
    with mapped_errors("creating the articles and feeds indices"):
        ensure_indices(es, settings, ["articles", "feeds"])
    report = IngestReport()
    due = _due_sources(chosen, load_states(es, settings, [s.id for s in chosen]), report, now,
                       force=force, ignore_schedule=ignore_schedule)
    total, skipped = len(due), len(chosen) - len(due)
    procs = parse_pool(processes, total)
    with (
        relaxed_gc(enabled=total >= PROCESS_POOL_MIN_FEEDS),
        RefreshPause(es, settings, enabled=total >= BULK_LOAD_MIN_FEEDS) as paused,
        Fetcher(user_agent=settings.user_agent) as fetcher,
        ThreadPoolExecutor(workers, thread_name_prefix="feed") as feeds,
        ThreadPoolExecutor(workers, thread_name_prefix="page") as pages,
        procs or nullcontext(),
    ):
        decider = EntryDecider(
            settings, es, reader=PageReader(fetcher, extractor or TrafilaturaFirst()), pages=pages,
            near=NearDuplicateIndex(load_text=lambda ids: store.load_texts(es, settings, ids)),
            now=now, fetch_articles=fetch_articles, refresh_paused=paused.active,
        )
        writer = OrderedWriter(settings, es, now)
        decide_s, batches = 0.0, 0

        def poll(item: tuple[Source, FeedState]) -> Future[Poll]:
            return feeds.submit(poll_source, fetcher, *item, settings=settings, now=now, processes=procs)

        def decide_and_write(polls: list[Poll]) -> Future[list[Poll]]:
            nonlocal decide_s, batches
            started = time.perf_counter()
            commits = [Commit(p) for p in polls]
            decider.decide([c for c in commits if c.poll.result.status == "ok" and c.poll.feed is not None])
            for commit in commits:
                commit.poll.feed = None  # decided: the parsed entries are no longer needed
            decide_s += time.perf_counter() - started
            batches += 1
            return writer.submit(commits)

        def written(poll: Poll) -> None:
            report.feeds.append(poll.result)
            if progress is not None:
                progress(poll.result, len(report.feeds) - skipped, total)

        try:
            _in_batches(due, poll, decide_and_write, written, pending_docs=lambda: writer.pending_docs,
                        in_flight=IN_FLIGHT_PER_WORKER * workers)
        finally:
            writer.close()
            # main thread deciding / writer thread writing (they overlap), and how much was coalesced
            report.timings = {"decide_s": round(decide_s, 2), "write_s": round(writer.busy_s, 2),
                              "write_groups": writer.groups, "batches": batches}
    with mapped_errors("refreshing the articles and feeds indices"):
        es.indices.refresh(index=f"{settings.index('articles')},{settings.index('feeds')}")
    log.info("ingest: %s", {k: v for k, v in report.as_dict().items() if k != "article_ids"})
    return report


def _due_sources(
    chosen: list[Source], states: dict[str, FeedState], report: IngestReport, now: datetime, *,
    force: bool, ignore_schedule: bool,
) -> list[tuple[Source, FeedState]]:
    """The sources to poll now with their states; the others go into ``report`` as skipped."""
    due: list[tuple[Source, FeedState]] = []
    for source in chosen:
        state = states.get(source.id, FeedState(source_id=source.id)).for_source(source)
        if not source.enabled or (state.disabled and not force):
            reason = "disabled in the sources file" if not source.enabled else state.disabled_reason
            report.feeds.append(
                FeedResult(source.id, source.outlet, source.url, status="disabled", error=reason)
            )
        elif not (force or ignore_schedule) and not state.is_due(now):
            report.feeds.append(FeedResult(source.id, source.outlet, source.url, status="not_due"))
        else:
            due.append((source, state))
    return due


def _in_batches(
    due: list[tuple[Source, FeedState]],
    poll: Callable[[tuple[Source, FeedState]], Future[Poll]],
    decide_and_write: Callable[[list[Poll]], Future[list[Poll]]],
    written: Callable[[Poll], None],
    *,
    pending_docs: Callable[[], int],
    in_flight: int,
) -> None:
    """Keep ``in_flight`` feeds polling, hand finished ones to ``decide_and_write`` a batch at a
    time, and pass every feed to ``written`` once its writes are done, in batch order. Waits for
    the writer when too many batches or articles are pending (memory stays bounded when the
    index is slow); re-raises the writer's failure."""
    polling: set[Future[Poll]] = set()
    committing: deque[Future[list[Poll]]] = deque()
    queue = iter(due)

    def drain(block_until: int, max_docs: int) -> None:
        while committing and (
            len(committing) > block_until or pending_docs() > max_docs or committing[0].done()
        ):
            for done in committing.popleft().result():  # re-raises ServiceUnavailable
                written(done)

    ready: list[Poll] = []  # polled, waiting to be decided as one batch
    ready_entries, ready_since = 0, 0.0
    while True:
        while len(polling) < in_flight and (item := next(queue, None)) is not None:
            polling.add(poll(item))
        if not polling and not ready:
            break
        if polling:
            timeout = max(0.0, ready_since + BATCH_MAX_WAIT_S - time.monotonic()) if ready else None
            finished, polling = wait(polling, timeout=timeout, return_when=FIRST_COMPLETED)
            for fut in finished:
                ready.append(fut.result())
                ready_entries += ready[-1].result.entries
                if len(ready) == 1:
                    ready_since = time.monotonic()
        # A batch is decided and written when it is big enough for Elasticsearch's per-request
        # cost not to matter, when it has waited long enough (slow feeds keep their progress
        # visible), or when nothing else is coming.
        if ready and (
            ready_entries >= BATCH_ENTRIES
            or len(ready) >= BATCH_FEEDS
            or not polling
            or time.monotonic() - ready_since >= BATCH_MAX_WAIT_S
        ):
            committing.append(decide_and_write(ready))
            ready, ready_entries = [], 0
        drain(block_until=MAX_PENDING_COMMITS, max_docs=MAX_PENDING_DOCS)  # + progress so far
    drain(block_until=0, max_docs=0)
