"""Feed state: exponential backoff, cap, disabling with a reason, recovery, config changes."""

from __future__ import annotations

from datetime import timedelta

from pipeline.ingest.sources import Source
from pipeline.ingest.state import DISABLE_AFTER, MAX_BACKOFF, FeedState, parse_time
from tests.ingest_support import NOW

SRC = Source(id="s", name="S", url="https://s.example/feed", poll_minutes=15)


def fail(state, now, **kw):
    state.record_failure(
        now=now, source=SRC, status="error", error="HTTP 500", http_status=500, poll_ms=1, **kw
    )


def test_backoff_doubles_is_capped_and_disables_with_reason():
    state = FeedState(source_id="s").for_source(SRC)
    delays = []
    for _ in range(DISABLE_AFTER):
        fail(state, NOW)
        delays.append(parse_time(state.next_poll) - NOW)
    assert delays[:4] == [timedelta(minutes=m) for m in (15, 30, 60, 120)]
    assert max(delays) == MAX_BACKOFF
    assert (
        state.disabled
        and "10 consecutive failures" in state.disabled_reason
        and "HTTP 500" in state.disabled_reason
    )
    state.record_success(
        now=NOW,
        source=SRC,
        status="ok",
        http_status=200,
        etag='"e"',
        last_modified=None,
        body_hash="h",
        entries=3,
        new_articles=1,
        bozo=False,
        bozo_message=None,
        poll_ms=5,
    )
    assert not state.disabled and state.consecutive_failures == 0 and state.etag == '"e"'
    assert parse_time(state.next_poll) == NOW + timedelta(minutes=15) and state.is_due(
        NOW + timedelta(minutes=15)
    )
    assert not state.is_due(NOW + timedelta(minutes=14))


def test_retry_after_is_respected():
    state = FeedState(source_id="s").for_source(SRC)
    fail(state, NOW, retry_after=7200)
    assert parse_time(state.next_poll) == NOW + timedelta(hours=2)


def test_changed_url_forgets_validators_and_re_enables():
    state = FeedState(
        source_id="s",
        url="https://old.example/feed",
        etag='"x"',
        body_hash="h",
        disabled=True,
        consecutive_failures=12,
    )
    state.for_source(SRC)
    assert (state.etag, state.body_hash, state.disabled, state.consecutive_failures) == (None, None, False, 0)
    assert FeedState.from_doc({**state.as_doc(), "unknown_field": 1}).url == SRC.url
