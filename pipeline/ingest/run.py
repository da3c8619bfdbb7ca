"""One ingestion pass: due sources polled, new entries turned into articles, state saved last.

Shape of a run:

- worker threads fetch feeds (network overlaps); parsing and per-entry analysis (language,
  near-duplicate fingerprint) run in worker processes when many feeds are due, so the cores share
  feedparser's cost;
- the main thread gathers finished feeds into a batch (about BATCH_ENTRIES entries, or what
  BATCH_MAX_WAIT_S brought) and decides, feed by feed in order, so deduplication sees every
  earlier article of the run and two outlets carrying one story cannot both create it: one lookup
  of known entries for the batch, page fetch + extraction of the new entries in a thread pool,
  canonical URL -> id, exact and near dedup (one candidate query, or none on a first run);
- one writer thread applies the batches in order: one bulk ``create`` of the articles (never
  overwriting later stages' fields; two chunk requests in flight), outlet merges, and only then
  the feed states, while the main thread works on the next batch. Batches that queued up while it
  wrote are written together. Big batches matter: with a request per feed, Elasticsearch spent
  about twice the CPU of the same documents in requests of 500, and on a small machine CPU is
  what the parsers and the node share.

Elasticsearch failing raises ``ServiceUnavailable`` and the run stops with the states of unwritten
feeds not advanced; a feed failing is a ``FeedResult`` with ``status="error"``.

Nothing a feed contains stops the run. A page that cannot be fetched or extracted (a malformed
link, a slow or hostile server) leaves the article with the feed's text and the reason in
``error``. Anything unexpected while deciding one entry becomes that entry's article error and
the entry is kept as a ``rejected`` document holding the entry itself, so the feed's state still
advances past an entry that would fail the same way at every poll; anything unexpected for a
whole feed becomes that feed's ``internal_error`` (its state records the failure and backs off,
like any failing feed), and the other feeds of the batch are written as usual.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from pipeline.es.client import mapped_errors
from pipeline.ingest import articles as store
from pipeline.ingest.canonical import (
    article_id,
    canonicalize_url,
    is_unresolved_news_link,
    resolve_redirect_link,
    safe_canonicalize_url,
)
from pipeline.ingest.dedup import NearDuplicateIndex
from pipeline.ingest.extract import Extraction, choose_text
from pipeline.ingest.fetch import Fetcher
from pipeline.ingest.parse import FeedEntry, ParsedFeed, collapse_whitespace
from pipeline.ingest.poll import Analysis, Poll, Progress, analyse_text, poll_source, select_sources
from pipeline.ingest.report import FeedResult, IngestReport
from pipeline.ingest.sources import Source, load_sources
from pipeline.ingest.state import FeedState, iso, load_states
from pipeline.settings import Settings

log = logging.getLogger(__name__)
PAGE_MAX_BYTES = 5 * 1024 * 1024
NEAR_DUP_WINDOW = timedelta(days=7)
PROCESS_POOL_MIN_FEEDS = 50  # below this, starting worker processes costs more than it saves
MAX_PENDING_COMMITS = 8  # batches decided but not yet written: bounds memory when the index is slow
MAX_PENDING_DOCS = 5_000  # ... and the articles in them (a batch may be one feed or a hundred)
BATCH_ENTRIES = 1_000  # feed entries per batch: one lookup, one candidate query, ~two bulk requests
BATCH_FEEDS = 200  # ... or this many feeds (unchanged feeds have no entries, only a state to save)
BATCH_MAX_WAIT_S = 2.0  # ... or whatever has been polled after this long
IN_FLIGHT_PER_WORKER = 4  # feeds being fetched or parsed per worker thread, while a batch is decided
BULK_LOAD_MIN_FEEDS = 200  # a run this big pauses the articles index's once-a-second refresh
BULK_LOAD_REFRESH = "30s"  # while it writes (not -1: a run killed midway leaves a working index)
BULK_CONCURRENCY = 2
# Bulk item statuses that retrying cannot fix (a mapping refusal; None: could not be serialised).
PERMANENT_ERROR_STATUSES = frozenset({400, None})
REJECTED_JSON_MAX = 1_000_000  # article chunk requests in flight: both cores of a small node index


@dataclass
class _Commit:
    """The writes of one polled feed, applied in order by the single writer thread.

    ``merges``: (article id, outlets, links, GUID keys) to add to an existing article."""

    poll: Poll
    docs: list[dict[str, Any]] = field(default_factory=list)
    merges: list[tuple[str, list[str], list[str], list[str]]] = field(default_factory=list)


class _Run:
    """The main-thread side of a run (lookups, page fetches, decisions) and its writer thread.

    All Elasticsearch writes go through one writer thread in batch order: articles, then outlet
    merges (which may touch articles created by an earlier bulk), then the feed states. The main
    thread meanwhile works on the next batch, so Elasticsearch indexing overlaps our parsing.
    """

    def __init__(
        self,
        settings: Settings,
        es: Any,
        fetcher: Fetcher,
        pages: ThreadPoolExecutor,
        now: datetime,
        fetch_articles: bool | None,
        refresh_paused: bool = False,
    ) -> None:
        self.settings, self.es, self.fetcher, self.pages, self.now = settings, es, fetcher, pages, now
        self.refresh_paused = refresh_paused
        self.fetch_articles = fetch_articles
        self.known = store.KnownArticles()
        self.near = NearDuplicateIndex(load_text=lambda ids: store.load_texts(es, settings, ids))
        self.window_start = iso(now - NEAR_DUP_WINDOW)
        self.now_iso = iso(now)
        # An index with no article at all (a first run, a backfill) has nothing to look up: every
        # article this run writes is also remembered in memory, so lookups can start after it.
        self.index_empty = store.count_articles(es, settings) == 0
        self.writer = ThreadPoolExecutor(1, thread_name_prefix="writer")
        self.timings = {"decide_s": 0.0, "write_s": 0.0}  # main thread busy / writer thread busy
        self.stats = {"write_groups": 0, "batches": 0}
        self._queue: deque[tuple[list[_Commit], Future[list[Poll]]]] = deque()
        self._lock = threading.Lock()
        self._failure: BaseException | None = None
        self.pending_docs = 0  # decided, not yet written (read by the main thread to apply back-pressure)

    def close(self) -> None:
        self.writer.shutdown(wait=True)

    def process(self, polls: list[Poll]) -> Future[list[Poll]]:
        """Decide what to write for these feeds (one batch: one lookup, one near-duplicate query);
        returns the future of their writes (done = articles and states committed)."""
        started = time.perf_counter()
        commits = [_Commit(poll) for poll in polls]
        self._articles([c for c in commits if c.poll.result.status == "ok" and c.poll.feed is not None])
        for commit in commits:
            commit.poll.feed = None  # decided: the parsed entries are no longer needed
        self.timings["decide_s"] += time.perf_counter() - started
        done: Future[list[Poll]] = Future()
        with self._lock:
            self._queue.append((commits, done))
            self.pending_docs += sum(len(c.docs) for c in commits)
        self.stats["batches"] += 1
        self.writer.submit(self._commit_queued)
        return done

    # -- writer thread -------------------------------------------------------------------------
    def _commit_queued(self) -> None:
        """Write every batch queued so far as one group (in queue order), then complete their
        futures; an earlier group's failure fails the rest without writing (the run stops)."""
        with self._lock:
            group = list(self._queue)
            self._queue.clear()
        if not group:
            return  # an earlier call took these batches along
        started = time.perf_counter()
        commits = [c for batch, _ in group for c in batch]
        try:
            if self._failure is not None:
                raise self._failure
            self._write(commits)
        except BaseException as exc:  # noqa: BLE001 - handed to the futures, raised by the main thread
            self._failure = self._failure or exc
            for _, done in group:
                done.set_exception(exc)
        else:
            for batch, done in group:
                done.set_result([c.poll for c in batch])
        finally:
            with self._lock:
                self.pending_docs -= sum(len(c.docs) for c in commits)
            self.stats["write_groups"] += 1
            self.timings["write_s"] += time.perf_counter() - started

    def _write(self, commits: list[_Commit]) -> list[Poll]:
        from pipeline.errors import ServiceError
        from pipeline.es.bulk import bulk_write

        owner = {doc["id"]: c for c in commits for doc in c.docs}
        docs = [doc for c in commits for doc in c.docs]
        failed: set[str] = set()  # not created by this run: index errors, and conflicts merged
        errors: set[str] = set()
        if docs:
            report = bulk_write(
                self.es, self.settings.index("articles"), docs, op_type="create", concurrency=BULK_CONCURRENCY
            )
            by_id = {doc["id"]: doc for doc in docs}
            rejected = []
            for err in report.errors:
                failed.add(str(err["id"]))
                errors.add(str(err["id"]))
                owner[str(err["id"])].poll.result.article_errors.append(
                    {"id": str(err["id"]), "error": f"{err['type']}: {err['reason']}"}
                )
                if err.get("status") in PERMANENT_ERROR_STATUSES:
                    rejected.append(rejected_stub(by_id[str(err["id"])], err))
            if rejected:
                # Elasticsearch will refuse these again at every poll: keep each as a small
                # "rejected" document holding the original (stored, not indexed), so nothing is
                # lost and the feed moves on instead of failing until it is disabled.
                kept = bulk_write(self.es, self.settings.index("articles"), rejected, op_type="create")
                still = {str(e["id"]) for e in kept.errors if e.get("status") != 409}
                for stub in rejected:
                    if stub["id"] not in still:
                        errors.discard(stub["id"])
                        for entry in owner[stub["id"]].poll.result.article_errors:
                            if entry["id"] == stub["id"]:
                                entry["kept_as"] = "rejected"
            if report.conflict_ids:
                # Someone else (a concurrent run, or a run that crashed after its bulk) created these
                # ids first: theirs is kept and ours becomes an outlet merge (one read-modify-write
                # per conflicting id, not per document of the batch).
                for doc in (by_id[i] for i in dict.fromkeys(report.conflict_ids)):
                    if doc["id"] not in failed and store.add_to_article(
                        self.es,
                        self.settings,
                        doc["id"],
                        outlets=doc["outlets"],
                        links=doc["links"],
                        guid_keys=doc["guid_keys"],
                    ):
                        failed.add(doc["id"])
                        owner[doc["id"]].poll.result.duplicates += 1
        for commit in commits:
            result, source = commit.poll.result, commit.poll.source
            lost = [d for d in commit.docs if d["id"] in errors]
            if lost:
                # Not advancing the feed state makes the next poll retry these entries.
                result.status, result.error_kind = "error", "index_error"
                result.error = f"{len(lost)} of {len(commit.docs)} articles could not be indexed"
            for doc in commit.docs:
                if doc["id"] in failed:
                    continue
                if doc.get("duplicate_of"):
                    # indexed (nothing is lost) but not a new story: counted with the duplicates
                    result.near_duplicates += 1
                    commit.merges.append((doc["duplicate_of"], [source.outlet], [], []))
                else:
                    result.new_articles += 1
                result.article_ids.append(doc["id"])
            for aid, outlets, links, guid_keys in commit.merges:
                store.add_to_article(
                    self.es, self.settings, aid, outlets=outlets, links=links, guid_keys=guid_keys
                )
        states = [self._state(c.poll) for c in commits]
        saved = bulk_write(self.es, self.settings.index("feeds"), states, id_field="source_id")
        if saved.errors:
            raise ServiceError(f"feed state could not be saved: {saved.errors[:3]}")
        return [c.poll for c in commits]

    def _state(self, poll: Poll) -> dict[str, Any]:
        result, source, state, fetch = poll.result, poll.source, poll.state, poll.fetch
        state.final_url = result.final_url
        state.warnings = result.warnings or None
        if result.status == "error":
            state.record_failure(
                now=self.now,
                source=source,
                status="error",
                error=result.error or "",
                error_kind=result.error_kind,
                http_status=result.http_status,
                poll_ms=result.elapsed_ms,
                retry_after=fetch.retry_after if fetch else None,
            )
        else:
            assert fetch is not None
            state.record_success(
                now=self.now,
                source=source,
                status=result.status,
                http_status=result.http_status,
                etag=fetch.headers.get("etag"),
                last_modified=fetch.headers.get("last-modified"),
                body_hash=fetch.body_hash,
                entries=result.entries,
                new_articles=result.new_articles,
                bozo=result.bozo,
                bozo_message=result.bozo_message,
                poll_ms=result.elapsed_ms,
            )
        return state.as_doc()

    # -- main thread ---------------------------------------------------------------------------
    def _articles(self, commits: list[_Commit]) -> None:
        """Known/new split, page fetches, canonical ids, near duplicates: for a batch of feeds,
        with one lookup per kind for the whole batch and decisions made feed by feed in order."""
        if not commits:
            return
        todo: list[tuple[_Commit, list[tuple[FeedEntry, str | None, str | None]]]] = []
        for commit in commits:
            source, feed = commit.poll.source, commit.poll.feed
            assert feed is not None
            entries = []  # entry, pre-canonical link, guid key
            for entry in feed.entries:
                gkey = f"{source.id}|{entry.guid}" if entry.guid else None
                entries.append((entry, _pre_canonical(entry), gkey))
            todo.append((commit, entries))
        every = [e for _, entries in todo for e in entries]
        if not self.index_empty:
            store.lookup_known(
                self.es,
                self.settings,
                self.known,
                ids=[article_id(p) for _, p, _ in every if p],
                links=[x for e, p, _ in every for x in (e.link, p) if x],
                guid_keys=[g for _, _, g in every if g],
            )
        pending: list[tuple[_Commit, FeedEntry, str | None, Future[Any] | tuple[Any, ...]]] = []
        for commit, entries in todo:
            source, result = commit.poll.source, commit.poll.result
            fetch_pages = source.fetch_articles if self.fetch_articles is None else self.fetch_articles
            allow_private = source.allow_private or self.settings.allow_private_hosts
            seen_here: set[str] = set()
            for entry, pre, gkey in entries:
                try:
                    links = [x for x in (entry.link, pre) if x]
                    match = self.known.match(ids=[article_id(pre)] if pre else [], links=links, guid_key=gkey)
                    if match is not None:
                        self._merge_existing(commit, match, links, gkey, count_known=True)
                    elif (key := gkey or pre or entry.entry_id) in seen_here:
                        result.known += 1  # the same item twice in one feed
                    else:
                        seen_here.add(key)
                        work = (
                            self.pages.submit(self._page, entry, pre, True, allow_private, source.timeout)
                            if fetch_pages
                            else self._page(entry, pre, False, allow_private, source.timeout)
                        )
                        pending.append((commit, entry, gkey, work))
                except Exception as exc:  # noqa: BLE001 - one entry must not stop its feed or the run
                    self._keep_failed_entry(commit, entry, gkey, exc)
        prepared = [
            (commit, entry, gkey, *(work.result() if isinstance(work, Future) else work))
            for commit, entry, gkey, work in pending
        ]
        if not self.index_empty:
            store.lookup_known(
                self.es, self.settings, self.known, ids=[p[5] for p in prepared], links=[], guid_keys=[]
            )
        analyses = {
            id(p[1]): self._safe_analysis(p[0].poll.source, p[0].poll.feed, p[1], p[3]) for p in prepared
        }
        bands = [b for an in analyses.values() if an.fingerprint for b in an.fingerprint.bands]
        # Candidates in Elasticsearch: any earlier article when the index had some; when it was
        # empty, only this run's articles that left the in-memory window, so only bands that one
        # of those may have had are worth a query (usually none: no query at all).
        query_bands = bands if not self.index_empty else self.near.maybe_evicted(bands)
        if query_bands and self.refresh_paused and self.near.maybe_evicted(query_bands):
            # this run's evicted articles are KEEP_SHINGLES articles old: written by now (unless a
            # single batch is that big) but, with the refresh paused, not searchable before this
            with mapped_errors("refreshing the articles index"):
                self.es.indices.refresh(index=self.settings.index("articles"))
        if query_bands:
            found = store.near_candidates(self.es, self.settings, query_bands, self.window_start)
            for aid, cand_bands in found:
                self.near.add(aid, cand_bands)
        for commit, entry, gkey, extraction, canonical, aid, links, page_url in prepared:
            source, result, feed = commit.poll.source, commit.poll.result, commit.poll.feed
            assert feed is not None
            try:
                if aid in self.known.outlets:  # another outlet (or link) already gave us this URL
                    self._merge_existing(commit, aid, links, gkey, count_known=False)
                    if extraction.error:
                        result.article_errors.append({"link": entry.link or "", "error": extraction.error})
                    continue
                analysis = analyses[id(entry)]
                doc = self._doc(
                    source, feed, entry, gkey, extraction, canonical, aid, links, page_url, analysis
                )
            except Exception as exc:  # noqa: BLE001 - one entry must not stop its feed or the run
                self._keep_failed_entry(commit, entry, gkey, exc)
                continue
            if extraction.error:
                result.article_errors.append({"link": entry.link or "", "error": extraction.error})
            commit.docs.append(doc)
            self.known.remember(doc)
            if doc.get("duplicate_of"):
                self.known.outlets.setdefault(doc["duplicate_of"], set()).add(source.outlet)

    def _keep_failed_entry(self, commit: _Commit, entry: FeedEntry, gkey: str | None, exc: Exception) -> None:
        """An entry that failed unexpectedly: an article error, and the entry itself kept as a
        ``rejected`` document (nothing lost), so the feed advances instead of failing at every poll."""
        source, result = commit.poll.source, commit.poll.result
        log.warning("entry %s of %s failed", entry.entry_id, source.id, exc_info=True)
        error = f"entry could not be processed: {type(exc).__name__}: {exc}"[:2000]
        result.article_errors.append({"link": _safe_text(entry.link or ""), "error": error})
        aid = article_id(f"urn:newswatch:entry:{source.id}:{entry.entry_id}")
        if aid in self.known.outlets or any(d["id"] == aid for d in commit.docs):
            return  # the same broken entry twice in one batch: kept once
        original = {
            "entry": {k: getattr(entry, k) for k in entry.__dataclass_fields__},
            "source_id": source.id,
            "feed_url": source.url,
        }
        stub = rejected_stub(
            {
                "id": aid,
                "url": _safe_text(entry.link or ""),
                "source_id": source.id,
                "source_name": source.name,
                "source_type": source.source_type,
                "outlet": source.outlet,
                "title": _safe_text(entry.title),
                "fetched": self.now_iso,
                "original": original,
            },
            {"type": "entry_failed", "reason": error},
        )
        stub["guid_keys"] = [_safe_text(gkey)] if gkey else []
        stub["links"] = [_safe_text(entry.link)] if entry.link else []
        commit.docs.append(stub)
        self.known.remember(stub)

    def _page(
        self, entry: FeedEntry, pre: str | None, fetch_pages: bool, allow_private: bool, timeout: float
    ) -> tuple[Extraction, str, str, list[str], str | None]:
        """Fetch the page, extract, decide the canonical URL. Never raises: whatever goes wrong
        with the page, the article keeps the feed's text and says why in ``error``."""
        try:
            html, page_url, error = self._fetch_page(entry, fetch_pages, allow_private, timeout)
            extraction = _extract(entry, html, page_url, error)
            return (extraction, *_identity(entry, pre, extraction, page_url))
        except Exception as exc:  # noqa: BLE001 - a hostile page is this article's error, not the run's
            log.warning("article page %r failed unexpectedly", entry.link, exc_info=True)
            error = f"article page: unexpected {type(exc).__name__}: {exc}"[:2000]
            extraction = _extract(entry, None, None, error)
            return (extraction, *_identity(entry, pre, extraction, None))

    def _fetch_page(
        self, entry: FeedEntry, fetch_pages: bool, allow_private: bool, timeout: float
    ) -> tuple[bytes | None, str | None, str | None]:
        """``(html, page_url, error)`` of the entry's page (all None when pages are not fetched)."""
        if not (fetch_pages and entry.link):
            return None, None, None
        # A news-search wrapper whose target is in the link is fetched at the target: no
        # request to the search engine, and no interstitial page instead of the article.
        # The source's timeout applies to its pages too: its per-wait bound, and (times
        # DEADLINE_FACTOR) the total time a page may take.
        page = self.fetcher.get(
            resolve_redirect_link(entry.link),
            allow_private=allow_private,
            timeout=timeout,
            max_bytes=PAGE_MAX_BYTES,
            accept="text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
        )
        if not (page.ok and page.body is not None):
            return None, None, f"article page: {page.error_kind}: {page.error}"
        ctype = page.headers.get("content-type", "text/html")
        if is_unresolved_news_link(page.final_url or entry.link) and _is_search_host(
                page.final_url or entry.link):
            # An opaque Google News id that no HTTP redirect resolved: the page is the
            # search engine's, not the article; keep the feed text and say so.
            return None, None, ("news-search link not resolved: the page is the search engine's, "
                                "not the article")
        if "html" in ctype or "xml" in ctype:
            return page.body, page.final_url, None
        return None, None, f"article page is {ctype}, not HTML"

    def _doc(
        self,
        source: Source,
        feed: ParsedFeed,
        entry: FeedEntry,
        gkey: str | None,
        extraction: Extraction,
        canonical: str,
        aid: str,
        links: list[str],
        page_url: str | None,
        analysis: Analysis,
    ) -> dict[str, Any]:
        text, fp = extraction.text, analysis.fingerprint
        # a new original goes into the near-duplicate index as it is looked up
        duplicate_of = self.near.find_or_add(aid, fp) if fp else None
        doc: dict[str, Any] = {
            "id": aid,
            "url": entry.link or canonical,
            "canonical_url": canonical,
            "page_url": page_url,
            "guid": entry.guid,
            "guid_keys": [gkey] if gkey else [],
            "links": links,
            "source_id": source.id,
            "source_name": source.name,
            "source_type": source.source_type,
            "outlet": source.outlet,
            "outlets": [source.outlet],
            "feed_url": source.url,
            "title": entry.title or text[:120],
            # the summary is not stored twice: when it is the text, `extraction` says feed_summary
            "summary": entry.summary if entry.summary != text else None,
            "text": text,
            "authors": list(entry.authors),
            "tags": list(entry.tags),
            "published": iso(entry.published),
            "published_estimated": entry.published_estimated,
            "fetched": self.now_iso,
            "language": analysis.language,
            "language_confidence": analysis.confidence,
            "extraction": extraction.method,
            "paywalled": extraction.paywalled,
            "content_hash": hashlib.sha256(collapse_whitespace(text).encode()).hexdigest()[:32],
            "minhash_bands": fp.bands if fp else None,
            "status": "extracted",
            "error": extraction.error,
        }
        if duplicate_of:
            doc["duplicate_of"] = duplicate_of
        return {k: v for k, v in doc.items() if v is not None}

    def _analysis(
        self, source: Source, feed: ParsedFeed, entry: FeedEntry, extraction: Extraction
    ) -> Analysis:
        """The worker's analysis when it was made on this very text, else computed now."""
        done = feed.analyses.get(entry.entry_id)
        if done is not None and done.text == extraction.text:
            return done
        declared = entry.language or extraction.page_language or source.language or feed.language
        return analyse_text(entry.title, extraction.text, declared)

    def _safe_analysis(
        self, source: Source, feed: ParsedFeed | None, entry: FeedEntry, extraction: Extraction
    ) -> Analysis:
        """``_analysis``, or an undetermined language and no fingerprint when the text defeats it
        (the article is then indexed without near-duplicate detection rather than not at all)."""
        try:
            assert feed is not None
            return self._analysis(source, feed, entry, extraction)
        except Exception:  # noqa: BLE001
            log.warning("analysing entry %s of %s failed", entry.entry_id, source.id, exc_info=True)
            return Analysis(extraction.text, "und", 0.0, None)

    def _merge_existing(
        self, commit: _Commit, aid: str, links: list[str], gkey: str | None, *, count_known: bool
    ) -> None:
        """An entry whose story is already stored: add this outlet (and the links) to it."""
        source, result = commit.poll.source, commit.poll.result
        outlets = self.known.outlets.setdefault(aid, set())
        had = source.outlet in outlets
        if had and count_known:
            result.known += 1
            return
        commit.merges.append((aid, [source.outlet], links, [gkey] if gkey else []))
        outlets.add(source.outlet)
        self.known.remember({"id": aid, "links": links, "guid_keys": [gkey] if gkey else []})
        if had:
            result.known += 1
        else:
            result.duplicates += 1


def _pre_canonical(entry: FeedEntry) -> str | None:
    """The entry link's canonical form; a link ``urlsplit`` refuses is kept as it is (the page
    fetch then says what is wrong with it, and the id stays the same at every poll)."""
    if not entry.link:
        return None
    return safe_canonicalize_url(entry.link) or None


def _safe_text(value: str) -> str:
    """``value`` with lone surrogates replaced, so it can be sent to Elasticsearch as UTF-8."""
    return value.encode("utf-8", "replace").decode("utf-8") if isinstance(value, str) else value


def rejected_stub(doc: dict[str, Any], error: dict[str, Any]) -> dict[str, Any]:
    """The document kept for an entry Elasticsearch refused: identity, the error, and the whole
    original as JSON (truncated at REJECTED_JSON_MAX characters) in a field that is not indexed."""
    import json

    try:
        body = json.dumps(doc, default=str, ensure_ascii=False)
        body.encode("utf-8")
    except (UnicodeError, ValueError):  # lone surrogates: as JSON escapes, which any reader takes
        body = json.dumps(doc, default=str, ensure_ascii=True)
    stub: dict[str, Any] = {
        "id": doc["id"],
        "status": "rejected",
        "error": f"{error.get('type')}: {error.get('reason')}"[:2000],
        "rejected_document": {"json": body[:REJECTED_JSON_MAX], "truncated": len(body) > REJECTED_JSON_MAX},
    }
    for key, limit in (("url", 4096), ("source_id", 256), ("source_name", 512), ("outlet", 512),
                       ("title", 1000), ("source_type", 64)):
        if isinstance(doc.get(key), str):
            stub[key] = doc[key][:limit]
    for key in ("fetched", "published"):
        if key in doc:
            stub[key] = doc[key]
    if isinstance(doc.get("outlet"), str):
        stub["outlets"] = [doc["outlet"][:512]]
    return stub


def _is_search_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "news.google.com" or host.endswith(".news.google.com")


def _same_site(a: str, b: str) -> bool:
    """rel=canonical is trusted only within the page's own site, so a hostile page cannot claim
    another outlet's article id."""
    ha, hb = (urlsplit(x).hostname or "" for x in (a, b))
    strip = lambda h: h[4:] if h.startswith("www.") else h  # noqa: E731
    return bool(ha) and strip(ha.lower()) == strip(hb.lower())


class _RefreshPause:
    """Pause the periodic refresh of the articles and feeds indices while a big run writes, and
    put it back after, even when the run fails. A refresh a second makes a new segment a second
    (the feeds index gets a state per feed), and merging them cost Elasticsearch a good share of a
    big run's CPU; the run ends with an explicit refresh of both anyway.

    A value found at BULK_LOAD_REFRESH is one a killed run left behind: the template's is restored.
    """

    KINDS = ("articles", "feeds")

    def __init__(self, es: Any, settings: Settings, *, enabled: bool) -> None:
        self.es, self.settings, self.enabled = es, settings, enabled
        self.active = False
        self.previous: dict[str, str | None] = {}  # alias -> the interval to put back

    def __enter__(self) -> _RefreshPause:
        if not self.enabled:
            return self
        from pipeline.es.schema import INDEX_SPECS

        try:
            for kind in self.KINDS:
                alias = self.settings.index(kind)
                with mapped_errors(f"reading the refresh interval of {alias}"):
                    found = self.es.indices.get_settings(index=alias, name="index.refresh_interval")
                    current = [v["settings"]["index"].get("refresh_interval") for v in dict(found).values()]
                    previous = current[0] if current else None
                    if previous == BULK_LOAD_REFRESH:
                        template = INDEX_SPECS[kind].template_body(self.settings)["template"]
                        previous = template["settings"]["refresh_interval"]
                    self.es.indices.put_settings(
                        index=alias, settings={"index": {"refresh_interval": BULK_LOAD_REFRESH}}
                    )
                self.previous[alias] = previous
                self.active = True
        except BaseException:
            self.__exit__(*sys.exc_info())
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.active:
            return
        failed: list[Exception] = []
        for alias, previous in self.previous.items():  # every one is tried, whatever fails
            try:
                with mapped_errors(f"restoring the refresh interval of {alias}"):
                    self.es.indices.put_settings(
                        index=alias, settings={"index": {"refresh_interval": previous}}
                    )
            except Exception as error:
                failed.append(error)
                log.warning("could not restore the refresh interval of %s", alias, exc_info=True)
        if failed and exc[0] is None:
            raise failed[0]


class RespawningPool(Executor):
    """A process pool that replaces itself when a worker dies.

    ``ProcessPoolExecutor`` is unusable once a worker dies (a parser crash, the OOM killer): every
    later ``submit`` raises ``BrokenProcessPool``. Here only the tasks that were in the dead pool
    fail (``poll_source`` reports them per feed); the next ``submit`` gets a fresh pool."""

    def __init__(self, factory: Callable[[], Executor]) -> None:
        self._factory = factory
        self._pool = factory()
        self._lock = threading.Lock()
        self.respawns = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            pool = self._pool
        try:
            return pool.submit(fn, *args, **kwargs)
        except BrokenProcessPool:
            with self._lock:
                if self._pool is pool:
                    pool.shutdown(wait=False, cancel_futures=True)
                    self._pool = self._factory()
                    self.respawns += 1
                pool = self._pool
            return pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _process_pool(processes: int | None, due: int) -> RespawningPool | None:
    import multiprocessing
    import os

    if processes is None:
        allowed = not multiprocessing.current_process().daemon  # e.g. inside some task runners
        processes = (os.cpu_count() or 1) if allowed and due >= PROCESS_POOL_MIN_FEEDS else 0
    if processes <= 0:
        return None
    # forkserver, not fork: this process already runs threads, and forking those is unsafe
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["pipeline.ingest.preload"])
    pool = RespawningPool(lambda: ProcessPoolExecutor(processes, mp_context=ctx))
    # Start the forkserver (its preload takes a few hundred ms) and fork the workers now, from a
    # thread of their own, while this thread prepares the indices and the first feeds download.
    def warm_up() -> None:
        try:
            for _ in range(processes):
                pool.submit(os.getpid)
        except RuntimeError:  # the run ended (and shut the pool down) first
            pass

    threading.Thread(target=warm_up, name="pool-warmup", daemon=True).start()
    return pool


RELAXED_GC_THRESHOLDS = (50_000, 50, 100)  # big runs, and the parse workers (preload.py)


@contextmanager
def _relaxed_gc(enabled: bool) -> Iterator[None]:
    """Fewer cyclic garbage collections during a big run, restored afterwards.

    A run allocates millions of small objects that reference counting frees anyway (entries,
    band keys); with the default thresholds the collector walked them about 1.2 CPU-s per
    1,000 feeds. Objects alive before the run are frozen out of the walks."""
    if not enabled:
        yield
        return
    import gc

    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*RELAXED_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


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
) -> IngestReport:
    """Poll every due source once and index its new articles (status ``extracted``).

    ``ignore_schedule`` polls sources before their next poll time; ``force`` also polls sources that
    were disabled after repeated failures (a success re-enables them); ``fetch_articles``
    overrides the sources' setting (False: feed text only); ``sources`` bypasses the sources file.
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
    states = load_states(es, settings, [s.id for s in chosen])
    report = IngestReport()
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
    total = len(due)
    procs = _process_pool(processes, len(due))
    with (
        _relaxed_gc(enabled=total >= PROCESS_POOL_MIN_FEEDS),
        _RefreshPause(es, settings, enabled=total >= BULK_LOAD_MIN_FEEDS) as paused,
        Fetcher(user_agent=settings.user_agent) as fetcher,
        ThreadPoolExecutor(workers, thread_name_prefix="feed") as feeds,
        ThreadPoolExecutor(workers, thread_name_prefix="page") as pages,
        procs or nullcontext(),
    ):
        run = _Run(settings, es, fetcher, pages, now, fetch_articles, refresh_paused=paused.active)
        polling: set[Future[Poll]] = set()
        committing: deque[Future[list[Poll]]] = deque()
        queue = iter(due)

        def drain(block_until: int, max_docs: int) -> None:
            while committing and (
                len(committing) > block_until or run.pending_docs > max_docs or committing[0].done()
            ):
                for poll in committing.popleft().result():  # re-raises ServiceUnavailable
                    report.feeds.append(poll.result)
                    if progress is not None:
                        progress(poll.result, len(report.feeds) - (len(chosen) - total), total)

        try:
            ready: list[Poll] = []  # polled, waiting to be decided as one batch
            ready_entries, ready_since = 0, 0.0
            in_flight = IN_FLIGHT_PER_WORKER * workers
            while True:
                while len(polling) < in_flight and (item := next(queue, None)) is not None:
                    polling.add(
                        feeds.submit(
                            poll_source,
                            fetcher,
                            item[0],
                            item[1],
                            settings=settings,
                            now=now,
                            processes=procs,
                        )
                    )
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
                # A batch is decided and written when it is big enough for Elasticsearch's
                # per-request cost not to matter, when it has waited long enough (slow feeds keep
                # their progress visible), or when nothing else is coming.
                if ready and (
                    ready_entries >= BATCH_ENTRIES
                    or len(ready) >= BATCH_FEEDS
                    or not polling
                    or time.monotonic() - ready_since >= BATCH_MAX_WAIT_S
                ):
                    committing.append(run.process(ready))
                    ready, ready_entries = [], 0
                drain(block_until=MAX_PENDING_COMMITS, max_docs=MAX_PENDING_DOCS)  # + progress so far
            drain(block_until=0, max_docs=0)
        finally:
            run.close()
            report.timings = {k: round(v, 2) for k, v in run.timings.items()}
            report.timings.update(run.stats)  # batches decided, groups written (how much was coalesced)
    with mapped_errors("refreshing the articles and feeds indices"):
        es.indices.refresh(index=f"{settings.index('articles')},{settings.index('feeds')}")
    log.info("ingest: %s", {k: v for k, v in report.as_dict().items() if k != "article_ids"})
    return report


def _extract(entry: FeedEntry, html: bytes | None, page_url: str | None, error: str | None) -> Extraction:
    return choose_text(title=entry.title, summary=entry.summary, content=entry.content,
                       page_html=html, page_url=page_url, page_error=error)


def _identity(entry: FeedEntry, pre: str | None, extraction: Extraction,
              page_url: str | None) -> tuple[str, str, list[str], str | None]:
    """``(canonical URL, article id, every link it is known by, page URL)`` of an article."""
    base = safe_canonicalize_url(page_url) if page_url else pre
    canonical = base or ""
    if extraction.canonical_url and page_url and _same_site(extraction.canonical_url, page_url):
        # a page's rel=canonical with a port urlsplit refuses is only the page's claim: ignored
        with suppress(ValueError):
            canonical = canonicalize_url(extraction.canonical_url)
    if not canonical:
        canonical = f"urn:newswatch:entry:{entry.entry_id}"
    links = [x for x in dict.fromkeys((entry.link, pre, page_url, base, canonical)) if x]
    return canonical, article_id(canonical), links, page_url
