"""Replay the labelled real news items (``../shared/corpus/news_items.jsonl``) as RSS feeds.

One feed per outlet on a loopback :class:`tests.support.LocalHTTPServer`, each holding the items of
that outlet released so far, newest first, as a real feed shows them: title, link (the item's real
URL, never fetched: the sources say ``fetch_articles: false``), the publisher's summary as the
description and the original publication date. Items are released by date (``release_until``), so a
caller can run the pipeline after each round as the scheduler would after new items appeared.

The corpus is read at run time and never copied into the repository.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from tests.support import SHARED, LocalHTTPServer, Response

CORPUS = SHARED / "corpus"
ITEMS_FILE = CORPUS / "news_items.jsonl"
PAIRS_FILE = CORPUS / "claim_pairs.jsonl"

_REQUIRED = ("id", "title", "text", "url", "published", "source", "language", "on_topic")


@dataclass(frozen=True)
class ReplayItem:
    id: str
    title: str
    text: str
    url: str
    published: datetime
    source: str
    language: str
    on_topic: bool
    motives: tuple[str, ...] = ()


@dataclass(frozen=True)
class ClaimPair:
    a: str
    b: str
    relation: str
    why: str = ""


class CorpusError(ValueError):
    """A corpus line that cannot be used: names the file, the line, the item and the field."""


def _parse_date(value: object, where: str) -> datetime:
    if not isinstance(value, str):
        raise CorpusError(f"{where}, field 'published': expected an ISO 8601 string, got {value!r}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise CorpusError(f"{where}, field 'published': not ISO 8601 ({value!r})") from exc
    # A date without an offset is read as UTC rather than the machine's zone, so runs agree.
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def load_items(path: Path = ITEMS_FILE) -> list[ReplayItem]:
    """Every item of the file in publication order (ties by id); every bad line is reported at once."""
    items, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not JSON ({exc.msg})")
            continue
        where = f"{path}:{n} item {raw.get('id', '?')}" if isinstance(raw, dict) else where
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected a JSON object")
            continue
        missing = [k for k in _REQUIRED if k not in raw]
        if missing:
            problems.append(f"{where}: missing field(s) {', '.join(missing)}")
            continue
        try:
            items.append(ReplayItem(
                id=str(raw["id"]), title=str(raw["title"] or ""), text=str(raw["text"] or ""),
                url=str(raw["url"]), published=_parse_date(raw["published"], where),
                source=str(raw["source"]), language=str(raw["language"]), on_topic=bool(raw["on_topic"]),
                motives=tuple(raw.get("motives") or ())))
        except CorpusError as exc:
            problems.append(str(exc))
    if problems:
        raise CorpusError("; ".join(problems))
    return sorted(items, key=lambda i: (i.published, i.id))


def load_pairs(path: Path = PAIRS_FILE) -> list[ClaimPair]:
    pairs, problems = [], []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            pairs.append(ClaimPair(str(raw["a"]), str(raw["b"]), str(raw["relation"]),
                                   str(raw.get("why", ""))))
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            problems.append(f"{path}:{n}: {type(exc).__name__}: {exc}")
    if problems:
        raise CorpusError("; ".join(problems))
    return pairs


def outlet_id(name: str) -> str:
    """A source id from an outlet name: ASCII, lower case ('Dân trí' -> 'dan-tri')."""
    ascii_name = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:60] or "outlet"


def render_rss(title: str, link: str, language: str, items: list[ReplayItem], built: datetime) -> bytes:
    """RSS 2.0 as many publishers send it: items newest first, the summary as plain description."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>', '<rss version="2.0">', "<channel>",
           f"<title>{escape(title)}</title>", f"<link>{escape(link)}</link>",
           f"<description>{escape(title)} (replayed test feed)</description>",
           f"<language>{escape(language)}</language>",
           f"<lastBuildDate>{format_datetime(built, usegmt=True)}</lastBuildDate>"]
    for item in sorted(items, key=lambda i: (i.published, i.id), reverse=True):
        out += ["<item>", f"<title>{escape(item.title)}</title>", f"<link>{escape(item.url)}</link>",
                f'<guid isPermaLink="true">{escape(item.url)}</guid>',
                f"<pubDate>{format_datetime(item.published, usegmt=True)}</pubDate>"]
        if item.text:  # a feed item with no summary carries no description element at all
            out.append(f"<description>{escape(item.text)}</description>")
        out.append("</item>")
    out += ["</channel>", "</rss>"]
    return ("\n".join(out) + "\n").encode("utf-8")


class ReplayFeeds:
    """The items as per-outlet RSS feeds on 127.0.0.1; nothing is visible until released."""

    def __init__(self, items: list[ReplayItem]) -> None:
        self.items = sorted(items, key=lambda i: (i.published, i.id))
        self.server = LocalHTTPServer()
        self._lock = threading.Lock()
        self._released = 0
        self.outlets: dict[str, str] = {}  # source id -> outlet name
        by_outlet: dict[str, Counter[str]] = {}
        for item in self.items:
            sid = outlet_id(item.source)
            if self.outlets.setdefault(sid, item.source) != item.source:
                raise CorpusError(f"outlets {item.source!r} and {self.outlets[sid]!r} map to one id {sid!r}")
            by_outlet.setdefault(sid, Counter())[item.language] += 1
        # the channel declares the outlet's usual language, as a mixed-language feed would
        self.languages = {sid: c.most_common(1)[0][0] for sid, c in by_outlet.items()}
        for sid in self.outlets:
            self.server.route(f"/feeds/{sid}.xml", self._handler(sid))

    def _handler(self, sid: str):
        def handle(_request: object) -> Response:
            with self._lock:
                out = [i for i in self.items[:self._released] if outlet_id(i.source) == sid]
            built = max((i.published for i in out), default=datetime(2024, 1, 1, tzinfo=UTC))
            body = render_rss(self.outlets[sid], f"{self.server.base_url}/", self.languages[sid], out, built)
            return Response(body, headers={"Content-Type": "application/rss+xml; charset=utf-8"})

        return handle

    def feed_url(self, sid: str) -> str:
        return self.server.url(f"/feeds/{sid}.xml")

    def release_until(self, end: datetime) -> list[ReplayItem]:
        """Publish every item dated before ``end``; returns the newly published ones."""
        with self._lock:
            start = self._released
            while self._released < len(self.items) and self.items[self._released].published < end:
                self._released += 1
            return self.items[start:self._released]

    def sources_yaml(self) -> str:
        lines = ["# replayed corpus feeds on a loopback server (benchmark data)", "defaults:", "  kind: rss",
                 "  poll_minutes: 1", "  allow_private: true", "  fetch_articles: false", "  timeout: 10",
                 "sources:"]
        for sid, name in sorted(self.outlets.items()):
            lines += [f"  - id: {sid}", f"    name: {json.dumps(name, ensure_ascii=False)}",
                      f"    url: {self.feed_url(sid)}"]
        return "\n".join(lines) + "\n"

    def start(self) -> ReplayFeeds:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()
