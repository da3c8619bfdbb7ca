"""The alert ledger: one Elasticsearch document per (cluster event, subscription), created once.

Exactly-once, as far as SMTP allows:

1. The ledger document is created with ``op_type=create`` and a deterministic id *before* any
   mail is sent, so a retry, a re-run or a backfill finds it and never creates a second alert.
2. A sender takes a document by bumping ``attempts`` and setting ``status=sending`` with
   ``if_seq_no``/``if_primary_term``: two workers can never both take it.
3. After the SMTP server accepts the message the document becomes ``sent`` with the Message-ID.
   If SMTP refuses, it goes back to ``pending`` (connection trouble) or ``failed`` (the server
   rejected it) with ``last_error``; both are retried by ``send_pending``, up to ``MAX_ATTEMPTS``.

The residual window: a crash (or Elasticsearch going away) after the SMTP server accepted a
message but before step 3 is recorded leaves the document in ``sending``. After ``LEASE`` it is
sent again, with the *same* Message-ID (derived from the alert id), so receiving systems that
de-duplicate on Message-ID drop it and threads stay intact. That is the best SMTP permits: it has
no idempotency key, so "exactly once" is "at most twice, same Message-ID, only after a crash".
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from pipeline.settings import Settings

__all__ = ["alert_id", "event_id", "message_id", "thread_root", "MAX_ATTEMPTS", "LEASE",
           "RETRYABLE", "iso"]

MAX_ATTEMPTS = 8
LEASE = timedelta(minutes=10)
RETRYABLE = ("pending", "failed", "sending")


def ensure_missing_indices(es: Any, settings: Settings, kinds: list[str]) -> None:
    """Create only the indices whose alias is missing: putting templates on every run would make
    a cluster-state update per task run for nothing."""
    from pipeline.es.schema import ensure_indices

    missing = [k for k in kinds if not es.indices.exists_alias(name=settings.index(k))]
    if missing:
        ensure_indices(es, settings, missing)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_id(cluster_id: str, event: str, claim_id: str) -> str:
    """The cluster event an alert is about. A cluster is new once; each update has its claim."""
    return f"{cluster_id}/new" if event == "new" else f"{cluster_id}/{event}/{claim_id}"


def alert_id(event: str, subscription_id: str) -> str:
    return hashlib.blake2b(f"{event}|{subscription_id}".encode(), digest_size=12).hexdigest()


def _domain(settings: Settings) -> str:
    address = parseaddr(settings.smtp.sender)[1]
    return address.split("@", 1)[1] if "@" in address else "newswatch.local"


def message_id(settings: Settings, alert: str) -> str:
    """Deterministic, so a resend after a crash carries the same Message-ID."""
    return f"<alert.{alert}@{_domain(settings)}>"


def thread_root(settings: Settings, cluster_id: str, subscription_id: str) -> str:
    """The Message-ID of the cluster's first alert to this subscription: updates reply to it."""
    return message_id(settings, alert_id(event_id(cluster_id, "new", ""), subscription_id))


def due(doc: dict[str, Any], now: datetime) -> bool:
    """Should ``send_pending`` try this alert now?"""
    status = doc.get("status")
    if status == "sent" or int(doc.get("attempts") or 0) >= MAX_ATTEMPTS:
        return False
    if status == "sending":
        updated = doc.get("updated")
        if not updated:
            return True
        taken = datetime.fromisoformat(str(updated).replace("Z", "+00:00"))
        return now - taken >= LEASE
    return status in RETRYABLE
