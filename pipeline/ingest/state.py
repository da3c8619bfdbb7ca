"""Per-source polling state in the feeds index: validators, body hash, health, schedule.

Why it lives in Elasticsearch: Airflow workers are disposable, and operators watch feed health in
Kibana next to the articles. Why it is written last: the state says "everything up to this body
is indexed", so it is saved only after that poll's articles are; a crash in between means the next
poll fetches the same body again and the deterministic article ids make the re-index a no-op.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

from pipeline.es.client import mapped_errors
from pipeline.ingest.sources import Source
from pipeline.settings import Settings
from pipeline.timefmt import iso_utc

MAX_BACKOFF = timedelta(hours=24)
DISABLE_AFTER = 10  # consecutive failures before a source is disabled (with a reason)


@dataclass
class FeedState:
    source_id: str
    name: str = ""
    url: str = ""
    kind: str = ""
    source_type: str = ""
    language: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    body_hash: str | None = None
    last_poll: str | None = None
    last_success: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    last_status: str | None = None
    http_status: int | None = None
    consecutive_failures: int = 0
    next_poll: str | None = None
    disabled: bool = False
    disabled_reason: str | None = None
    bozo: bool = False
    bozo_message: str | None = None
    entries: int = 0
    new_articles: int = 0
    poll_ms: float = 0.0
    outlet: str | None = None
    error_kind: str | None = None
    final_url: str | None = None
    warnings: list[str] | None = None
    poll_minutes: float | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> FeedState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})

    def for_source(self, source: Source) -> FeedState:
        """Describe the source as configured now; a changed URL drops validators and re-enables."""
        if self.url and self.url != source.url:
            self.etag = self.last_modified = self.body_hash = None
            self.disabled, self.disabled_reason, self.consecutive_failures = False, None, 0
        self.name, self.url, self.kind = source.name, source.url, source.kind
        self.source_type, self.language = source.source_type, source.language
        self.outlet, self.poll_minutes = source.outlet, source.poll_minutes
        return self

    def is_due(self, now: datetime) -> bool:
        return self.next_poll is None or parse_time(self.next_poll) <= now

    def record_success(
        self,
        *,
        now: datetime,
        source: Source,
        status: str,
        http_status: int | None,
        etag: str | None,
        last_modified: str | None,
        body_hash: str | None,
        entries: int,
        new_articles: int,
        bozo: bool,
        bozo_message: str | None,
        poll_ms: float,
    ) -> None:
        self.last_poll = self.last_success = iso_utc(now)
        self.last_status, self.http_status = status, http_status
        if etag is not None:
            self.etag = etag
        if last_modified is not None:
            self.last_modified = last_modified
        if body_hash is not None:
            self.body_hash = body_hash
        self.consecutive_failures, self.error_kind = 0, None
        self.disabled, self.disabled_reason = False, None
        self.bozo, self.bozo_message = bozo, bozo_message
        self.entries, self.new_articles, self.poll_ms = entries, new_articles, round(poll_ms, 1)
        self.next_poll = iso_utc(now + timedelta(minutes=source.poll_minutes))

    def record_failure(
        self,
        *,
        now: datetime,
        source: Source,
        status: str,
        error: str,
        http_status: int | None,
        poll_ms: float,
        retry_after: float | None = None,
        error_kind: str | None = None,
    ) -> None:
        """Exponential backoff from the poll interval, capped; disabled after DISABLE_AFTER in a row."""
        self.last_poll = self.last_error_at = iso_utc(now)
        self.error_kind = error_kind or status
        self.last_status, self.last_error, self.http_status = status, error, http_status
        self.consecutive_failures += 1
        self.poll_ms = round(poll_ms, 1)
        delay = min(
            timedelta(minutes=source.poll_minutes) * (2 ** (self.consecutive_failures - 1)), MAX_BACKOFF
        )
        if retry_after:
            delay = max(delay, min(timedelta(seconds=retry_after), MAX_BACKOFF))
        self.next_poll = iso_utc(now + delay)
        if self.consecutive_failures >= DISABLE_AFTER:
            self.disabled = True
            self.disabled_reason = (
                f"disabled after {self.consecutive_failures} consecutive failures; "
                f"last: {error}. `newswatch sources check` re-enables it on success."
            )

    def as_doc(self) -> dict[str, Any]:
        return asdict(self)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def load_states(es: Any, settings: Settings, source_ids: list[str]) -> dict[str, FeedState]:
    """States by source id (realtime get, so a state written a moment ago is seen)."""
    if not source_ids:
        return {}
    with mapped_errors("reading feed state"):
        resp = es.mget(index=settings.index("feeds"), ids=source_ids, realtime=True)
    out: dict[str, FeedState] = {}
    for doc in resp["docs"]:
        if doc.get("found"):
            out[doc["_id"]] = FeedState.from_doc(doc["_source"])
    return out


def all_states(es: Any, settings: Settings) -> list[FeedState]:
    with mapped_errors("listing feed states"):
        es.indices.refresh(index=settings.index("feeds"))
        resp = es.search(index=settings.index("feeds"), size=10_000, sort=[{"source_id": "asc"}])
    return [FeedState.from_doc(h["_source"]) for h in resp["hits"]["hits"]]
