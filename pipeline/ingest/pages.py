"""An entry's article page: fetched, its text extracted, and the article's canonical identity.

Why these belong together: the canonical URL (and so the article id) may come from the page
itself (``rel=canonical`` on the same site), so a page is read before the entry's id is final.
Nothing a page does stops the run: a malformed link, a slow or hostile server, markup that
defeats the extractor all leave the article with the feed's text and the reason in ``error``.
"""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.ingest.canonical import (
    article_id,
    canonicalize_url,
    is_unresolved_news_link,
    resolve_redirect_link,
    safe_canonicalize_url,
)
from pipeline.ingest.extract import Extraction, Extractor
from pipeline.ingest.fetch import Fetcher
from pipeline.ingest.parse import FeedEntry

log = logging.getLogger(__name__)
PAGE_MAX_BYTES = 5 * 1024 * 1024
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"


@dataclass(frozen=True)
class PageArticle:
    """What an entry's page (or, without one, its feed text) makes of the article."""

    extraction: Extraction
    canonical: str
    aid: str
    links: list[str]  # every link the article is known by
    page_url: str | None


def pre_canonical(entry: FeedEntry) -> str | None:
    """The entry link's canonical form; a link ``urlsplit`` refuses is kept as it is (the page
    fetch then says what is wrong with it, and the id stays the same at every poll)."""
    if not entry.link:
        return None
    return safe_canonicalize_url(entry.link) or None


class PageReader:
    """Reads entries' pages with one shared ``Fetcher`` and one extraction strategy; safe to use
    from the page threads of a run."""

    def __init__(self, fetcher: Fetcher, extractor: Extractor) -> None:
        self.fetcher, self.extractor = fetcher, extractor

    def read(
        self, entry: FeedEntry, pre: str | None, fetch_pages: bool, allow_private: bool, timeout: float
    ) -> PageArticle:
        """Fetch the page, extract, decide the canonical URL. Never raises: whatever goes wrong
        with the page, the article keeps the feed's text and says why in ``error``."""
        try:
            html, page_url, error = self._fetch(entry, fetch_pages, allow_private, timeout)
            extraction = self._extract(entry, html, page_url, error)
            return _identity(entry, pre, extraction, page_url)
        except Exception as exc:  # noqa: BLE001 - a hostile page is this article's error, not the run's
            log.warning("article page %r failed unexpectedly", entry.link, exc_info=True)
            error = f"article page: unexpected {type(exc).__name__}: {exc}"[:2000]
            extraction = self._extract(entry, None, None, error)
            return _identity(entry, pre, extraction, None)

    def _extract(
        self, entry: FeedEntry, html: bytes | None, page_url: str | None, error: str | None
    ) -> Extraction:
        return self.extractor.extract(title=entry.title, summary=entry.summary, content=entry.content,
                                      page_html=html, page_url=page_url, page_error=error)

    def _fetch(
        self, entry: FeedEntry, fetch_pages: bool, allow_private: bool, timeout: float
    ) -> tuple[bytes | None, str | None, str | None]:
        """``(html, page_url, error)`` of the entry's page (all None when pages are not fetched)."""
        if not (fetch_pages and self.extractor.reads_pages and entry.link):
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
            accept=PAGE_ACCEPT,
        )
        if not (page.ok and page.body is not None):
            return None, None, f"article page: {page.error_kind}: {page.error}"
        ctype = page.headers.get("content-type", "text/html")
        landed = page.final_url or entry.link
        if is_unresolved_news_link(landed) and _is_search_host(landed):
            # An opaque Google News id that no HTTP redirect resolved: the page is the
            # search engine's, not the article; keep the feed text and say so.
            return None, None, ("news-search link not resolved: the page is the search engine's, "
                                "not the article")
        if "html" in ctype or "xml" in ctype:
            return page.body, page.final_url, None
        return None, None, f"article page is {ctype}, not HTML"


def _identity(entry: FeedEntry, pre: str | None, extraction: Extraction, page_url: str | None) -> PageArticle:
    """The article's canonical URL, id and every link it is known by."""
    base = safe_canonicalize_url(page_url) if page_url else pre
    canonical = base or ""
    if extraction.canonical_url and page_url and _same_site(extraction.canonical_url, page_url):
        # a page's rel=canonical with a port urlsplit refuses is only the page's claim: ignored
        with suppress(ValueError):
            canonical = canonicalize_url(extraction.canonical_url)
    if not canonical:
        canonical = f"urn:newswatch:entry:{entry.entry_id}"
    links = [x for x in dict.fromkeys((entry.link, pre, page_url, base, canonical)) if x]
    return PageArticle(extraction, canonical, article_id(canonical), links, page_url)


def _is_search_host(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host == "news.google.com" or host.endswith(".news.google.com")


def _same_site(a: str, b: str) -> bool:
    """rel=canonical is trusted only within the page's own site, so a hostile page cannot claim
    another outlet's article id."""
    ha, hb = (urlsplit(x).hostname or "" for x in (a, b))
    strip = lambda h: h[4:] if h.startswith("www.") else h  # noqa: E731
    return bool(ha) and strip(ha.lower()) == strip(hb.lower())
