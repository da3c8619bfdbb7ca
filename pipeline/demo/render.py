"""Render sample items as an outlet would publish them: an RSS 2.0 feed and an article page.

The pages look like real news pages on purpose (navigation, a cookie banner, a related-links box,
a footer, JSON-LD metadata) so the extractor has the same debris to strip as on the web. The
sample-data notice sits in the feed's channel description and the page footer, never in the
article body, so it does not leak into extracted text or claims.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from email.utils import format_datetime
from html import escape as html_escape
from xml.sax.saxutils import escape as xml_escape
from xml.sax.saxutils import quoteattr

from pipeline.demo.sample import Outlet, SampleItem

__all__ = ["Published", "article_url", "render_article", "render_feed", "render_index"]

# Newspapers add tracking parameters to feed links; the page's canonical link has none. The
# ingester must reduce both to one canonical URL, as it has to on the real web.
TRACKING_QUERY = {"capital-herald": "?utm_source=rss&utm_medium=feed&utm_campaign=world"}


@dataclass(frozen=True)
class Published:
    """An item as released by the server: when it went out (the date shown to readers)."""

    item: SampleItem
    at: datetime


def article_url(base_url: str, item: SampleItem, *, tracking: bool = False) -> str:
    url = f"{base_url.rstrip('/')}{item.path}"
    return url + TRACKING_QUERY.get(item.outlet, "") if tracking else url


def _rss_item(base_url: str, pub: Published, outlets: dict[str, Outlet]) -> str:
    item = pub.item
    link = article_url(base_url, item, tracking=True)
    return (
        "    <item>\n"
        f"      <title>{xml_escape(item.title)}</title>\n"
        f"      <link>{xml_escape(link)}</link>\n"
        f'      <guid isPermaLink="false">{xml_escape(f"{item.outlet}:{item.slug}")}</guid>\n'
        f"      <pubDate>{format_datetime(pub.at, usegmt=True)}</pubDate>\n"
        f"      <dc:creator>{xml_escape(item.author)}</dc:creator>\n"
        f"      <category>{xml_escape(outlets[item.outlet].name)}</category>\n"
        f"      <description>{xml_escape(item.summary)}</description>\n"
        "    </item>\n"
    )


def render_feed(*, base_url: str, feed_path: str, title: str, description: str,
                published: Sequence[Published], outlets: dict[str, Outlet],
                built: datetime) -> bytes:
    """RSS 2.0 of ``published`` items, newest first (how news feeds order them)."""
    newest_first = sorted(published, key=lambda p: p.at, reverse=True)
    items = "".join(_rss_item(base_url, p, outlets) for p in newest_first)
    self_url = f"{base_url.rstrip('/')}{feed_path}"
    xml = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n'
        "  <channel>\n"
        f"    <title>{xml_escape(title)}</title>\n"
        f"    <link>{xml_escape(base_url.rstrip('/') + '/')}</link>\n"
        f"    <description>{xml_escape(description)}</description>\n"
        "    <language>en</language>\n"
        f"    <lastBuildDate>{format_datetime(built, usegmt=True)}</lastBuildDate>\n"
        f'    <atom:link href={quoteattr(self_url)} rel="self" type="application/rss+xml"/>\n'
        "    <ttl>5</ttl>\n"
        f"{items}"
        "  </channel>\n"
        "</rss>\n"
    )
    return xml.encode("utf-8")


def render_article(*, base_url: str, pub: Published, outlet: Outlet, notice: str,
                   related: Sequence[Published] = ()) -> bytes:
    """A full HTML page for one item, with the debris a real news site has around the text."""
    item = pub.item
    url = article_url(base_url, item)
    when = pub.at.isoformat().replace("+00:00", "Z")
    ld = json.dumps({
        "@context": "https://schema.org", "@type": "NewsArticle", "headline": item.title,
        "datePublished": when, "author": {"@type": "Person", "name": item.author},
        "publisher": {"@type": "Organization", "name": outlet.name}, "url": url,
        "description": item.summary,
    }).replace("</", "<\\/")
    paragraphs = "\n".join(f"      <p>{html_escape(p)}</p>" for p in item.paragraphs)
    related_html = "\n".join(
        f'          <li><a href="{html_escape(r.item.path)}">{html_escape(r.item.title)}</a></li>'
        for r in related
    )
    e = html_escape
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{e(item.title)} | {e(outlet.name)}</title>
  <link rel="canonical" href="{e(url)}">
  <meta name="description" content="{e(item.summary)}">
  <meta name="author" content="{e(item.author)}">
  <meta property="og:type" content="article">
  <meta property="og:title" content="{e(item.title)}">
  <meta property="og:url" content="{e(url)}">
  <meta property="og:site_name" content="{e(outlet.name)}">
  <meta property="article:published_time" content="{e(when)}">
  <script type="application/ld+json">{ld}</script>
</head>
<body>
  <div class="cookie-banner" role="dialog">We use cookies to remember your preferences.
    <button>Accept all</button> <button>Settings</button></div>
  <header class="site-header">
    <a class="logo" href="/">{e(outlet.name)}</a>
    <nav><a href="/">World</a> <a href="/">Asia</a> <a href="/">Europe</a> <a href="/">Opinion</a>
      <a href="/">Subscribe</a></nav>
  </header>
  <main>
    <article>
      <h1>{e(item.title)}</h1>
      <p class="byline">By <span class="author">{e(item.author)}</span> ·
        <time datetime="{e(when)}">{pub.at.strftime("%d %B %Y, %H:%M UTC")}</time></p>
{paragraphs}
    </article>
    <aside class="related">
      <h2>More from {e(outlet.name)}</h2>
      <ul>
{related_html}
      </ul>
    </aside>
  </main>
  <footer class="site-footer">
    <p class="sample-notice"><strong>Sample data.</strong> {e(notice)}</p>
    <p>{e(outlet.name)}: {e(outlet.description)}</p>
  </footer>
</body>
</html>
"""
    return page.encode("utf-8")


def render_index(*, base_url: str, outlets: dict[str, Outlet], notice: str, released: int,
                 total: int) -> bytes:
    """A small home page for people who open the server in a browser."""
    rows = "\n".join(
        f'    <li><a href="/feeds/{html_escape(o.id)}.xml">{html_escape(o.name)}</a> '
        f"({html_escape(o.kind)})</li>" for o in outlets.values()
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>newswatch sample feeds</title></head>
<body>
  <h1>newswatch sample feeds</h1>
  <p>{released} of {total} items released. <a href="/release?n=1">Release the next item</a> ·
    <a href="/status">status (JSON)</a> · <a href="/feed.xml">all outlets in one feed</a></p>
  <ul>
{rows}
  </ul>
  <p><strong>Sample data.</strong> {html_escape(notice)}</p>
</body></html>
""".encode()
