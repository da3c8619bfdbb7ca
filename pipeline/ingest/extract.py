"""Article page to main text, with an honest fallback to what the feed said.

An ``Extractor`` is the strategy; which one a run uses is configuration
(``NEWSWATCH_EXTRACTOR``, read by the CLI and the DAG task with ``extractor_from_environment``):

- ``trafilatura`` (the default): the page's main text by trafilatura, the feed's text when the
  page fails, is a paywall stub or is shorter than what the feed carried (``choose_text``);
- ``feed``: the feed's own text only; no page is fetched (as ``--no-pages``).

Why trafilatura first: the classifier and claim extraction need the article's own sentences,
not menus, related links or reader comments, so trafilatura runs precision-oriented with
comments off. Pages that fail or are paywall stubs (a teaser and "subscribe to continue") would
give less than the feed's own content, so the longer of the two wins and the article says which
it is (``extraction``) and whether a paywall was seen (``paywalled``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from pipeline.errors import ConfigError
from pipeline.ingest.canonical import find_rel_canonical

EXTRACTOR_ENV = "NEWSWATCH_EXTRACTOR"
MIN_PAGE_CHARS = 200  # shorter extractions are treated as failures
PAYWALL_STUB_CHARS = 1500  # a paywall marker plus less text than this is a stub
_PAYWALL = re.compile(
    rb"isAccessibleForFree\"?\s*:\s*\"?(?:false|False)|class=\"[^\"]*\b(?:paywall|piano-paywall|subscriber-only|"
    rb"premium-content|meteredContent)\b|"
    rb"(?:subscribe|sign in|log in) to (?:continue|keep) reading|already a subscriber\?|"
    rb"this (?:article|content) is (?:only )?(?:available )?(?:for|to) (?:subscribers|members)",
    re.IGNORECASE,
)
_HTML_LANG = re.compile(rb"<html\b[^>]*\blang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z]+)?)", re.IGNORECASE)


@dataclass(frozen=True)
class Extraction:
    text: str
    method: str  # page | feed_content | feed_summary | title_only
    paywalled: bool = False
    canonical_url: str | None = None
    page_language: str | None = None
    error: str | None = None


def extract_page(html: bytes, url: str) -> tuple[str, bool, str | None, str | None]:
    """Main text of a page, paywall flag, rel=canonical and the page's declared language."""
    import trafilatura

    text = (
        trafilatura.extract(
            html,
            url=url,
            favor_precision=True,
            include_comments=False,
            include_tables=False,
            include_images=False,
            include_links=False,
            deduplicate=False,
            output_format="txt",
        )
        or ""
    )
    paywalled = bool(_PAYWALL.search(html)) and len(text) < PAYWALL_STUB_CHARS
    lang = _HTML_LANG.search(html[:8192])
    return text.strip(), paywalled, find_rel_canonical(html, url), lang.group(1).decode() if lang else None


def choose_text(
    *,
    title: str,
    summary: str,
    content: str,
    page_html: bytes | None,
    page_url: str | None,
    page_error: str | None = None,
) -> Extraction:
    """Pick the article text: the extracted page unless it failed, is a stub, or is shorter than the
    feed's own content. Never raises for a bad page: the reason goes into ``error``."""
    page_text, paywalled, canonical, page_lang, error = "", False, None, None, page_error
    if page_html is not None and page_url:
        try:
            page_text, paywalled, canonical, page_lang = extract_page(page_html, page_url)
        except Exception as exc:  # noqa: BLE001 - lxml/trafilatura on hostile markup (deep nesting
            # gives RecursionError, odd bytes lxml's own errors): the page's failure, not the run's
            error = f"extraction failed: {type(exc).__name__}: {exc}"[:2000]
        if not error and len(page_text) < MIN_PAGE_CHARS and not paywalled:
            error = f"extraction yielded {len(page_text)} characters"
    feed_text, feed_method = (
        (content, "feed_content") if len(content) >= len(summary) else (summary, "feed_summary")
    )
    page_ok = len(page_text) >= MIN_PAGE_CHARS and not paywalled
    if page_ok and len(page_text) >= len(feed_text):
        return Extraction(page_text, "page", False, canonical, page_lang, None)
    if feed_text:
        return Extraction(feed_text, feed_method, paywalled, canonical, page_lang, error)
    if page_text:
        return Extraction(page_text, "page", paywalled, canonical, page_lang, error)
    return Extraction(title, "title_only", paywalled, canonical, page_lang, error)


def feed_extraction(*, title: str, summary: str, content: str) -> Extraction:
    """The feed's own text: its content or summary, whichever is longer, else the title."""
    text, method = (content, "feed_content") if len(content) >= len(summary) else (summary, "feed_summary")
    return Extraction(text, method) if text else Extraction(title, "title_only")


class Extractor(Protocol):
    """A page-text strategy. ``reads_pages``: whether article pages are worth fetching for it."""

    name: ClassVar[str]
    reads_pages: ClassVar[bool]

    def extract(
        self,
        *,
        title: str,
        summary: str,
        content: str,
        page_html: bytes | None,
        page_url: str | None,
        page_error: str | None = None,
    ) -> Extraction:
        """The article's text; never raises for a bad page (the reason goes into ``error``)."""
        ...


class TrafilaturaFirst:
    """The page's main text by trafilatura; the feed's text as the fallback (``choose_text``)."""

    name: ClassVar[str] = "trafilatura"
    reads_pages: ClassVar[bool] = True

    def extract(
        self,
        *,
        title: str,
        summary: str,
        content: str,
        page_html: bytes | None,
        page_url: str | None,
        page_error: str | None = None,
    ) -> Extraction:
        return choose_text(title=title, summary=summary, content=content, page_html=page_html,
                           page_url=page_url, page_error=page_error)


class FeedTextOnly:
    """What the feed carried, never the page: for feeds whose items are the whole story, or a
    run that must not touch publishers' sites."""

    name: ClassVar[str] = "feed"
    reads_pages: ClassVar[bool] = False

    def extract(
        self,
        *,
        title: str,
        summary: str,
        content: str,
        page_html: bytes | None,
        page_url: str | None,
        page_error: str | None = None,
    ) -> Extraction:
        found = feed_extraction(title=title, summary=summary, content=content)
        return Extraction(found.text, found.method, error=page_error)


EXTRACTORS: dict[str, type[Extractor]] = {e.name: e for e in (TrafilaturaFirst, FeedTextOnly)}
DEFAULT_EXTRACTOR = TrafilaturaFirst.name


def extractor_named(name: str | None) -> Extractor:
    """The extractor called ``name`` (None or empty: the default); ``ConfigError`` naming the
    setting and the known names otherwise."""
    chosen = (name or "").strip().lower() or DEFAULT_EXTRACTOR
    if chosen not in EXTRACTORS:
        raise ConfigError(
            f"{EXTRACTOR_ENV}={name!r}: unknown extractor; known: {', '.join(sorted(EXTRACTORS))}"
        )
    return EXTRACTORS[chosen]()


def extractor_from_environment(environ: Mapping[str, str] | None = None) -> Extractor:
    """The extractor ``NEWSWATCH_EXTRACTOR`` names (default ``trafilatura``)."""
    return extractor_named((os.environ if environ is None else environ).get(EXTRACTOR_ENV))
