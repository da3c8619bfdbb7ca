"""Polling one source (fetch + parse, in a worker thread) and ``check_sources`` (a dry run).

Why separate from ``run``: polling touches no index, so the CLI's ``sources check`` reuses it to
show what every source answers right now without writing anything.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.errors import ConfigError
from pipeline.ingest import articles as store
from pipeline.ingest.canonical import article_id, safe_canonicalize_url
from pipeline.ingest.dedup import Fingerprint, fingerprints
from pipeline.ingest.fetch import Fetcher, FetchResult
from pipeline.ingest.parse import FeedEntry, ParsedFeed, parse_feed
from pipeline.ingest.report import FeedResult
from pipeline.ingest.sources import Source, load_sources
from pipeline.ingest.state import FeedState
from pipeline.settings import Settings

log = logging.getLogger(__name__)
Progress = Callable[[FeedResult, int, int], None]
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)\b", re.IGNORECASE | re.DOTALL)


@dataclass
class Poll:
    source: Source
    state: FeedState
    result: FeedResult
    fetch: FetchResult | None = None
    feed: ParsedFeed | None = None


def select_sources(sources: list[Source], source_ids: list[str] | None) -> list[Source]:
    if not source_ids:
        return sources
    by_id = {s.id: s for s in sources}
    unknown = [s for s in source_ids if s not in by_id]
    if unknown:
        raise ConfigError(f"unknown source id(s): {', '.join(unknown)}; known: {', '.join(by_id)}")
    return [by_id[s] for s in source_ids]


LANGUAGE_SAMPLE = 250


@dataclass(frozen=True)
class Analysis:
    """Language and near-duplicate fingerprint of one text. Computed where the text is known:
    in the parsing process for feed text, in the main process for extracted pages."""

    text: str
    language: str
    confidence: float
    fingerprint: Fingerprint | None


def feed_text(entry: FeedEntry) -> str:
    """The text an entry carries by itself (the same choice ``extract.choose_text`` makes)."""
    return entry.content if len(entry.content) >= len(entry.summary) else entry.summary


def analyse_text(title: str, text: str, declared: str | None) -> Analysis:
    return analyse_texts([(title, text, declared)])[0]


def analyse_texts(items: list[tuple[str, str, str | None]]) -> list[Analysis]:
    """``analyse_text`` of many (title, text, declared language) at once: fingerprints are made
    in a few vectorised passes for all of them (see ``dedup.fingerprints``)."""
    from pipeline.language import detect_languages

    prints = fingerprints([text for _, text, _ in items])
    # A few hundred characters identify a language as well as the whole text at a fraction of
    # the cost: the identifier walks its automaton over every byte.
    langs = detect_languages([(f"{title}. {text[:LANGUAGE_SAMPLE]}", lang) for title, text, lang in items])
    return [
        Analysis(text, lang.code, round(lang.confidence, 4), fp)
        for (_, text, _), lang, fp in zip(items, langs, prints, strict=True)
    ]


def parse_and_analyse(
    body: bytes, url: str, headers: dict[str, str], now: datetime, declared: str | None
) -> ParsedFeed:
    """``parse_feed`` plus the analysis of every entry's own text, for a worker process: the CPU
    work of a feed then runs off the main process, so several cores share it."""
    feed = parse_feed(body, url=url, headers=headers, now=now)
    items = [
        (e.title, feed_text(e) or e.title, e.language or declared or feed.language) for e in feed.entries
    ]
    for e, analysis in zip(feed.entries, analyse_texts(items), strict=True):
        feed.analyses[e.entry_id] = analysis
    return feed


def poll_source(
    fetcher: Fetcher,
    source: Source,
    state: FeedState,
    *,
    settings: Settings,
    now: datetime,
    conditional: bool = True,
    processes: Executor | None = None,
) -> Poll:
    """Fetch and (if the body changed) parse one feed. Runs in a worker thread; touches no index.

    With ``processes``, parsing and per-entry analysis run in that process pool. Never raises for
    anything the feed or its server does: an unexpected failure is this feed's ``internal_error``
    (logged with its stack), so the other feeds of the run go on."""
    result = FeedResult(source_id=source.id, outlet=source.outlet, url=source.url)
    poll = Poll(source, state, result)
    try:
        return _poll(poll, fetcher, settings=settings, now=now, conditional=conditional, processes=processes)
    except Exception as exc:  # noqa: BLE001 - one feed must not stop the run; the reason is recorded
        log.warning("polling %s failed unexpectedly", source.url, exc_info=True)
        poll.feed, result.parsed, result.entries = None, False, 0
        result.status, result.error_kind = "error", "internal_error"
        result.error = f"{type(exc).__name__}: {exc}"[:2000]
        return poll


def _poll(
    poll: Poll,
    fetcher: Fetcher,
    *,
    settings: Settings,
    now: datetime,
    conditional: bool,
    processes: Executor | None,
) -> Poll:
    source, state, result = poll.source, poll.state, poll.result
    fetch = fetcher.get(
        source.url,
        allow_private=source.allow_private or settings.allow_private_hosts,
        timeout=source.timeout,
        max_bytes=source.max_bytes,
        etag=state.etag if conditional else None,
        last_modified=state.last_modified if conditional else None,
        accept="application/rss+xml, application/atom+xml, application/rdf+xml, "
        "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5",
    )
    poll.fetch = fetch
    result.http_status, result.final_url, result.elapsed_ms = fetch.status, fetch.final_url, fetch.elapsed_ms
    if not fetch.ok:
        result.status, result.error_kind, result.error = "error", fetch.error_kind, fetch.error
        return poll
    if fetch.not_modified:
        result.status = "not_modified"
        return poll
    body = fetch.body or b""
    if conditional and state.body_hash and fetch.body_hash == state.body_hash:
        result.status = "unchanged"  # the server ignored our validators; same bytes, so no parsing
        return poll
    try:
        if processes is not None:
            args = (parse_and_analyse, body, fetch.final_url, fetch.headers, now, source.language)
            try:
                feed = processes.submit(*args).result()
            except BrokenProcessPool:
                # A parse worker died: this feed's or another one's doing. Once more, in the pool
                # that replaced it (workers.RespawningPool): a feed that was only caught in someone
                # else's crash parses now, and one that kills its parser fails a second time.
                log.warning("the parse worker died while %s was queued or parsed; trying again", source.url)
                feed = processes.submit(*args).result()
        else:
            feed = parse_feed(body, url=fetch.final_url, headers=fetch.headers, now=now)
    except BrokenProcessPool:
        log.warning("the parse worker died twice while %s was queued or parsed", source.url)
        result.status, result.error_kind, result.error = (
            "error",
            "parser_crashed",
            "the parser process died twice while this feed was being parsed; retried at the next poll",
        )
        return poll
    except Exception as exc:  # noqa: BLE001
        # feedparser (or a parse worker) on hostile bytes: a per-feed error with the reason, the
        # run goes on. Exception, not a list: what a parser raises on input nobody foresaw is
        # by definition not foreseen.
        log.warning("parsing %s failed", source.url, exc_info=True)
        result.status, result.error_kind, result.error = (
            "error",
            "parse_error",
            f"{type(exc).__name__}: {exc}",
        )
        return poll
    poll.feed, result.parsed = feed, True
    result.entries, result.bozo, result.bozo_message = len(feed.entries), feed.bozo, feed.bozo_message
    result.warnings = list(feed.warnings)
    if not feed.is_feed or (not feed.entries and not feed.version):
        looks_html = "html" in fetch.headers.get("content-type", "") or _HTML_START.match(body[:4096])
        result.status = "error"
        result.error_kind = "not_a_feed" if looks_html else "malformed"
        result.error = (
            f"not a feed: the server sent {fetch.headers.get('content-type', 'no content type')}"
            if looks_html
            else f"no feed found: {feed.bozo_message or 'unrecognised format'}"
        )
    elif not feed.entries and feed.bozo:
        result.status, result.error_kind = "error", "malformed"
        result.error = f"malformed feed, no entries recovered: {feed.bozo_message}"
    result.elapsed_ms = fetch.elapsed_ms
    return poll


def check_sources(
    settings: Settings,
    es: Any = None,
    *,
    source_ids: list[str] | None = None,
    now: datetime | None = None,
    progress: Progress | None = None,
    sources: list[Source] | None = None,
    workers: int = 8,
) -> list[FeedResult]:
    """Poll every chosen source once, unconditionally, and count entries not yet ingested. Writes nothing."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    if sources is None:
        sources = load_sources(settings.sources_file, topic_path=settings.topic_file)
    chosen = select_sources(sources, source_ids)
    results: list[FeedResult] = []
    with Fetcher(user_agent=settings.user_agent) as fetcher, ThreadPoolExecutor(workers) as pool:
        futures = [
            pool.submit(
                poll_source,
                fetcher,
                s,
                FeedState(source_id=s.id),
                settings=settings,
                now=now,
                conditional=False,
            )
            for s in chosen
        ]
        for i, fut in enumerate(futures, 1):
            poll = fut.result()
            if es is not None and poll.feed is not None and poll.result.status == "ok":
                _count_new(es, settings, poll)
            results.append(poll.result)
            if progress is not None:
                progress(poll.result, i, len(futures))
    return results


def _count_new(es: Any, settings: Settings, poll: Poll) -> None:
    from pipeline.es.client import mapped_errors

    assert poll.feed is not None
    with mapped_errors("checking the articles index"):
        exists = es.indices.exists_alias(name=settings.index("articles"))
    known = store.KnownArticles()
    if exists:
        pre = {e.entry_id: safe_canonicalize_url(e.link) if e.link else None for e in poll.feed.entries}
        store.lookup_known(
            es,
            settings,
            known,
            ids=[article_id(p) for p in pre.values() if p],
            links=[x for e in poll.feed.entries for x in (e.link, pre[e.entry_id]) if x],
            guid_keys=[f"{poll.source.id}|{e.guid}" for e in poll.feed.entries if e.guid],
        )
    for entry in poll.feed.entries:
        p = safe_canonicalize_url(entry.link) if entry.link else None
        gkey = f"{poll.source.id}|{entry.guid}" if entry.guid else None
        if known.match(
            ids=[article_id(p)] if p else [], links=[x for x in (entry.link, p) if x], guid_key=gkey
        ):
            poll.result.known += 1
        else:
            poll.result.new_articles += 1
