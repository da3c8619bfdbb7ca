"""Helpers for the ingestion tests: sample feeds written for these tests (sample data, our own
words), sources pointing at the test HTTP server, and article lookups."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pipeline.es.schema import drop_prefix
from pipeline.ingest.sources import Source

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def source(sid: str, url: str, **kw: Any) -> Source:
    kw.setdefault("allow_private", True)
    kw.setdefault("timeout", 5.0)
    kw.setdefault("poll_minutes", 10.0)
    return Source(id=sid, name=kw.pop("name", sid.title()), url=url, outlet=kw.pop("outlet", sid), **kw)


def rss(items: list[dict[str, str]], *, title: str = "Sample feed", base: str = "http://127.0.0.1/") -> bytes:
    """An RSS 2.0 document. Items: title, link, description, guid, pubDate (datetime or str)."""
    parts = [
        f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{escape(title)}</title>'
        f"<link>{escape(base)}</link><description>sample data for tests</description>"
    ]
    for it in items:
        parts.append("<item>")
        for key in ("title", "link", "guid", "description", "author"):
            if key in it:
                parts.append(f"<{key}>{escape(it[key])}</{key}>")
        if "pubDate" in it:
            date = it["pubDate"]
            parts.append(
                f"<pubDate>{format_datetime(date) if isinstance(date, datetime) else date}</pubDate>"
            )
        parts.append("</item>")
    parts.append("</channel></rss>")
    return "".join(parts).encode("utf-8")


# Sample article text, written for these tests (not taken from any real outlet).
STORY = (
    "Sample data. Officials in the sample capital said on Monday that a second group of engineers had "
    "arrived at the border depot to repair the rail bridge damaged by spring floods. The ministry said "
    "the work would take about six weeks and cost less than the earlier estimate, because most of the "
    "steel could be reused. Local farmers told reporters the closure had forced them to drive grain "
    "to a port two hundred kilometres away, and several asked for compensation for the extra fuel. "
    "A spokesperson for the regional council said a temporary ferry would start running on Thursday "
    "and that tickets would be free for residents until the bridge reopens in early summer."
)
OTHER_STORY = (
    "Sample data. A museum in the sample harbour town opened an exhibition of hand-drawn maps from "
    "the nineteenth century on Saturday, including a chart of the coastline made by a lighthouse "
    "keeper who measured the bays by rowing along them. The curator said the maps had been found in "
    "a sealed trunk in the attic of the old customs house during repairs last autumn. Visitors can "
    "see how the shoreline has moved since then, and a volunteer guide explains how the keeper used "
    "a compass and a knotted rope to record distances. Entry is free on the first Sunday of each month."
)


def page(title: str, text: str, *, canonical: str | None = None, extra: str = "") -> bytes:
    """An article page with navigation and a comment section around the story (sample data)."""
    link = f'<link rel="canonical" href="{escape(canonical)}">' if canonical else ""
    paras = "".join(f"<p>{escape(p.strip())}.</p>" for p in text.split(". ") if p.strip())
    return (
        f'<!doctype html><html lang="en"><head><title>{escape(title)}</title>{link}</head><body>'
        "<nav><a href='/'>Home</a> <a href='/world'>World</a></nav>"
        f"<article><h1>{escape(title)}</h1>{paras}{extra}</article>"
        "<section id='comments' class='comments'><h2>Comments</h2><div class='comment'>"
        "<p>Reader comment: first!</p></div></section><footer>Sample footer</footer></body></html>"
    ).encode()


def articles(es: Any, settings: Any, **term: Any) -> list[dict[str, Any]]:
    es.indices.refresh(index=settings.index("articles"))
    query = {"term": term} if term else {"match_all": {}}
    resp = es.search(index=settings.index("articles"), query=query, size=1000)
    return [h["_source"] for h in resp["hits"]["hits"]]


def feed_state(es: Any, settings: Any, sid: str) -> dict[str, Any]:
    return es.get(index=settings.index("feeds"), id=sid)["_source"]


@contextmanager
def isolated_settings(base: Any, es: Any, tmp: Path) -> Iterator[Any]:
    """Like the ``settings`` fixture (unique prefix, cleanup), usable by module-scoped fixtures so
    that one ingest run can serve several tests."""
    prefix = f"test-{uuid.uuid4().hex[:10]}"
    s = replace(base, index_prefix=prefix, state_dir=tmp / "state", allow_private_hosts=True)
    try:
        yield s
    finally:
        drop_prefix(es, prefix)


def sample_items(prefix: str, count: int = 3) -> list[dict[str, Any]]:
    """``count`` RSS items of sample data, an hour apart, with links under ``/{prefix}/``."""
    return [
        {
            "title": f"Sample item {i}",
            "link": f"http://127.0.0.1/{prefix}/{i}",
            "guid": f"{prefix}-{i}",
            "description": f"Sample data: summary number {i} of the {prefix} tests.",
            "pubDate": NOW - timedelta(hours=i),
        }
        for i in range(count)
    ]


def ingest_feeds_only(settings: Any, es: Any, sources: list[Any], **kw: Any) -> Any:
    """One ingest pass at ``NOW`` without page fetching, every source polled whatever its schedule."""
    from pipeline.ingest import ingest_once

    kw.setdefault("now", NOW)
    kw.setdefault("fetch_articles", False)
    kw.setdefault("ignore_schedule", True)
    return ingest_once(settings, es, sources=sources, **kw)
