"""Per-feed and per-run outcomes, as data: a failed feed is a row, not an exception."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Feed statuses. "ok": parsed (maybe with bozo warnings); "not_modified": HTTP 304;
# "unchanged": 200 with the same body as last time (not parsed); "error": see error_kind;
# "disabled" / "not_due": not polled this run.
POLLED = ("ok", "not_modified", "unchanged", "error")
ARTICLE_ERRORS_SHOWN = 5


@dataclass
class FeedResult:
    source_id: str
    outlet: str
    url: str
    status: str = "ok"
    http_status: int | None = None
    final_url: str | None = None
    entries: int = 0
    new_articles: int = 0  # new stories indexed (near duplicates are indexed too, counted below)
    known: int = 0  # entries already ingested from this source
    duplicates: int = 0  # exact copies of another outlet's article (outlet added there)
    near_duplicates: int = 0  # indexed with duplicate_of
    parsed: bool = False
    error_kind: str | None = None
    error: str | None = None
    bozo: bool = False
    bozo_message: str | None = None
    warnings: list[str] = field(default_factory=list)
    article_errors: list[dict[str, str]] = field(default_factory=list)
    article_ids: list[str] = field(default_factory=list)
    elapsed_ms: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestReport:
    feeds: list[FeedResult] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # seconds the main/writer threads were busy

    def _count(self, status: str) -> int:
        return sum(1 for f in self.feeds if f.status == status)

    @property
    def sources_polled(self) -> int:
        return sum(1 for f in self.feeds if f.status in POLLED)

    @property
    def sources_ok(self) -> int:
        return sum(1 for f in self.feeds if f.status in ("ok", "not_modified", "unchanged"))

    @property
    def sources_failed(self) -> int:
        return self._count("error")

    @property
    def sources_not_modified(self) -> int:
        return self._count("not_modified") + self._count("unchanged")

    @property
    def entries(self) -> int:
        return sum(f.entries for f in self.feeds)

    @property
    def new_articles(self) -> int:
        return sum(f.new_articles for f in self.feeds)

    @property
    def duplicates(self) -> int:
        return sum(f.duplicates + f.near_duplicates for f in self.feeds)

    @property
    def article_ids(self) -> list[str]:
        return [a for f in self.feeds for a in f.article_ids]

    @property
    def article_errors(self) -> int:
        return sum(len(f.article_errors) for f in self.feeds)

    def as_dict(self) -> dict[str, Any]:
        """Small and JSON-able, for XCom: counts, new article ids, and failed sources with reasons."""
        return {
            "sources_polled": self.sources_polled,
            "sources_ok": self.sources_ok,
            "sources_failed": self.sources_failed,
            "sources_not_modified": self.sources_not_modified,
            "sources_skipped": len(self.feeds) - self.sources_polled,
            "entries": self.entries,
            "new_articles": self.new_articles,
            "duplicates": self.duplicates,
            "near_duplicates": sum(f.near_duplicates for f in self.feeds),
            "article_errors": self.article_errors,
            "article_ids": self.article_ids,
            "timings": self.timings,
            "failed": {f.source_id: f"{f.error_kind}: {f.error}" for f in self.feeds if f.status == "error"},
            # Per source, the first few entries kept with an error (page not fetched, entry
            # rejected): the feed moved on, and this is where an operator sees why.
            "article_failures": {
                f.source_id: f.article_errors[:ARTICLE_ERRORS_SHOWN] for f in self.feeds if f.article_errors
            },
        }

    def failure_summary(self) -> str | None:
        """One line naming the failed sources and why, or None when no polled source failed."""
        failed = [f for f in self.feeds if f.status == "error"]
        if not failed:
            return None
        reasons = "; ".join(f"{f.source_id} ({f.error_kind}: {' '.join((f.error or '').split())[:120]})"
                            for f in failed)
        return f"{len(failed)} of {self.sources_polled} polled source(s) failed: {reasons}"
