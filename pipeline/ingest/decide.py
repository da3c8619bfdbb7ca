"""What each polled entry becomes: known (an outlet added to a stored article), new, or a copy.

Decisions are made in the main thread, a batch of feeds at a time and feed by feed in order, so
deduplication sees every earlier article of the run and two outlets carrying one story cannot
both create it. Per batch: one lookup of the entries already known (by id, link and GUID), the
pages of the new ones fetched and extracted in the page threads, canonical URL -> id (a second
lookup: a page may say the article is one we have), then the exact and near-duplicate checks
(one Elasticsearch candidate query, or none when this run wrote every candidate itself).

Nothing a feed contains stops the run: anything unexpected while deciding one entry becomes that
entry's article error, and the entry is kept as a ``rejected`` document holding the entry itself,
so the feed's state still advances past an entry that would fail the same way at every poll.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor, Future
from datetime import datetime, timedelta
from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.ingest import articles as store
from pipeline.ingest.canonical import article_id
from pipeline.ingest.dedup import NearDuplicateIndex
from pipeline.ingest.documents import article_document, failed_entry_id, failed_entry_stub, safe_text
from pipeline.ingest.extract import Extraction
from pipeline.ingest.pages import PageArticle, PageReader, pre_canonical
from pipeline.ingest.parse import FeedEntry, ParsedFeed
from pipeline.ingest.poll import Analysis, analyse_text
from pipeline.ingest.sources import Source
from pipeline.ingest.writer import Commit
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

log = logging.getLogger(__name__)
NEAR_DUP_WINDOW = timedelta(days=7)


class EntryDecider:
    """Decides a run's batches; remembers what the run has decided so far (``known``, ``near``)."""

    def __init__(
        self,
        settings: Settings,
        es: Any,
        *,
        reader: PageReader,
        pages: Executor,
        near: NearDuplicateIndex,
        now: datetime,
        fetch_articles: bool | None,
        refresh_paused: bool = False,
    ) -> None:
        self.settings, self.es, self.reader, self.pages, self.near = settings, es, reader, pages, near
        self.fetch_articles = fetch_articles
        self.refresh_paused = refresh_paused
        self.known = store.KnownArticles()
        self.window_start = iso_utc(now - NEAR_DUP_WINDOW)
        self.now_iso = iso_utc(now)
        # An index with no article at all (a first run, a backfill) has nothing to look up: every
        # article this run writes is also remembered in memory, so lookups can start after it.
        self.index_empty = store.count_articles(es, settings) == 0

    def decide(self, commits: list[Commit]) -> None:
        """Known/new split, page fetches, canonical ids, near duplicates: for a batch of feeds,
        with one lookup per kind for the whole batch and decisions made feed by feed in order.
        Fills each commit's ``docs`` and ``merges``."""
        if not commits:
            return
        todo: list[tuple[Commit, list[tuple[FeedEntry, str | None, str | None]]]] = []
        for commit in commits:
            source, feed = commit.poll.source, commit.poll.feed
            assert feed is not None
            entries = []  # entry, pre-canonical link, guid key
            for entry in feed.entries:
                gkey = f"{source.id}|{entry.guid}" if entry.guid else None
                entries.append((entry, pre_canonical(entry), gkey))
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
        pending: list[tuple[Commit, FeedEntry, str | None, Future[PageArticle] | PageArticle]] = []
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
                        args = (entry, pre, fetch_pages, allow_private, source.timeout)
                        read = self.reader.read
                        work = self.pages.submit(read, *args) if fetch_pages else read(*args)
                        pending.append((commit, entry, gkey, work))
                except Exception as exc:  # noqa: BLE001 - one entry must not stop its feed or the run
                    self._keep_failed_entry(commit, entry, gkey, exc)
        prepared = [
            (commit, entry, gkey, work.result() if isinstance(work, Future) else work)
            for commit, entry, gkey, work in pending
        ]
        if not self.index_empty:
            store.lookup_known(
                self.es, self.settings, self.known, ids=[p.aid for *_, p in prepared], links=[], guid_keys=[]
            )
        analyses = {
            id(entry): self._safe_analysis(commit.poll.source, commit.poll.feed, entry, page.extraction)
            for commit, entry, _, page in prepared
        }
        bands = [b for an in analyses.values() if an.fingerprint for b in an.fingerprint.bands]
        self._load_near_candidates(bands)
        for commit, entry, gkey, page in prepared:
            source, result = commit.poll.source, commit.poll.result
            extraction = page.extraction
            try:
                if page.aid in self.known.outlets:  # another outlet (or link) already gave us this URL
                    self._merge_existing(commit, page.aid, page.links, gkey, count_known=False)
                    if extraction.error:
                        result.article_errors.append({"link": entry.link or "", "error": extraction.error})
                    continue
                analysis = analyses[id(entry)]
                fp = analysis.fingerprint
                # a new original goes into the near-duplicate index as it is looked up
                doc = article_document(
                    source=source, entry=entry, gkey=gkey, extraction=extraction, canonical=page.canonical,
                    aid=page.aid, links=page.links, page_url=page.page_url, language=analysis.language,
                    language_confidence=analysis.confidence, fingerprint=fp,
                    duplicate_of=self.near.find_or_add(page.aid, fp) if fp else None, fetched=self.now_iso,
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

    def _load_near_candidates(self, bands: list[str]) -> None:
        """Earlier articles that share a band with this batch's texts, into the near index.

        Candidates in Elasticsearch: any earlier article when the index had some; when it was
        empty, only this run's articles that left the in-memory window, so only bands that one of
        those may have had are worth a query (usually none: no query at all)."""
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

    def _keep_failed_entry(self, commit: Commit, entry: FeedEntry, gkey: str | None, exc: Exception) -> None:
        """An entry that failed unexpectedly: an article error, and the entry itself kept as a
        ``rejected`` document (nothing lost), so the feed advances instead of failing at every poll."""
        source, result = commit.poll.source, commit.poll.result
        log.warning("entry %s of %s failed", entry.entry_id, source.id, exc_info=True)
        error = f"entry could not be processed: {type(exc).__name__}: {exc}"[:2000]
        result.article_errors.append({"link": safe_text(entry.link or ""), "error": error})
        aid = failed_entry_id(source, entry)
        if aid in self.known.outlets or any(d["id"] == aid for d in commit.docs):
            return  # the same broken entry twice in one batch: kept once
        stub = failed_entry_stub(source, entry, gkey, error, fetched=self.now_iso)
        commit.docs.append(stub)
        self.known.remember(stub)

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
        self, commit: Commit, aid: str, links: list[str], gkey: str | None, *, count_known: bool
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
