"""The alert ledger: one Elasticsearch document per (cluster event, subscription), created once.

Exactly-once, as far as SMTP allows:

1. The ledger document is created with ``op_type=create`` and a deterministic id *before* any
   mail is sent, so a retry, a re-run or a backfill finds it and never creates a second alert.
2. The sender connects to the SMTP server first; when it cannot, no alert is touched (no attempt
   used up) and the run reports every due alert as pending.
3. Before SMTP DATA the sender records a **lease** on the document with ``if_seq_no`` /
   ``if_primary_term`` (the test node has no scripts, so compare-and-set is the only primitive):
   ``status=sending``, ``attempts`` + 1 (the attempt number), ``message_id``, ``lease_holder``
   (host:pid:random) and ``lease_expires`` (wall clock + ``LEASE``). Of two senders that read the
   same version only one can write it; a sender that finds an unexpired lease skips the alert.
4. After the server accepted the message the document becomes ``sent`` (again compare-and-set on
   the lease's version). A refusal makes it ``failed`` (retried up to ``MAX_ATTEMPTS``), lost
   connectivity makes it ``pending``; both release the lease.
5. Recovery: an alert whose earlier attempt may have reached the server (``attempts`` > 0: a lease
   that expired in ``sending`` because its holder died, or a connection lost during DATA) is first
   looked up by Message-ID in the server's store (``DeliveryStore``, see ``pipeline.alerts.mail``),
   under a fresh lease. Found: it is marked ``sent`` without sending (``delivery_check=found``).
   Not found: sent (``not_found``). The server cannot tell: sent (``unknown``).

Lease times are wall-clock times of the machine that writes them, never the run's logical ``now``
(a re-run of an old Airflow run would otherwise see every fresh lease as long expired).

What remains (the residual, exactly):

* **A generic SMTP server** (Mailpit in docker compose, any relay: no ``XDELIVERED``): a crash,
  a kill -9, an Elasticsearch outage or a connection lost between the server accepting DATA and
  step 4 being recorded still sends the alert **once more** after the lease expires, with the
  **same Message-ID** (derived from the alert id), so a receiving server or mail client that
  de-duplicates on Message-ID shows one message and threads stay intact. SMTP has no
  idempotency key; nothing on the sending side can close this window.
* **With the local mail catcher** the window is closed for crashes: the catcher stores the message
  before it answers 250, and the lookup finds it. What is left is a sender that is alive but
  stalled for longer than ``LEASE`` (suspended process, paused VM) between taking the lease and
  finishing DATA: another sender may take over, find nothing yet, and send too. Its own ledger
  write then fails the compare-and-set and is logged as a lost lease.
* **Clock skew** between two sending machines larger than ``LEASE`` minus one SMTP transaction
  lets a lease be taken over early, with the same two outcomes as the stalled sender.
* A crash while holding a lease delays that alert until the lease expires (``LEASE``): the
  price of not guessing whether the holder is dead.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr
from typing import Any

from pipeline.errors import ServiceError
from pipeline.settings import Settings

__all__ = ["alert_id", "event_id", "message_id", "thread_root", "MAX_ATTEMPTS", "LEASE",
           "RETRYABLE", "due", "es_call", "lease_state", "new_lease_holder", "parse_time",
           "LEASE_FIELDS"]

MAX_ATTEMPTS = 8
# Long against one SMTP transaction (connect + DATA, each bounded by the SMTP timeout, 30 s by
# default) plus one ledger write, because a lease that expires under a live sender can double a
# message; short enough that a crashed sender's alert goes out at the next scheduled run or so.
LEASE = timedelta(minutes=10)
RETRYABLE = ("pending", "failed", "sending")
# Fields of the alerts mapping the lease needs; an alerts index created before them gets them
# added in place (same mapping version: new fields are a compatible change).
LEASE_FIELDS = ("lease_holder", "lease_expires", "delivery_check")


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


def parse_time(value: object) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def new_lease_holder() -> str:
    """Who holds a lease, for the operator reading the ledger; random part for uniqueness."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def lease_state(doc: dict[str, Any], wall: datetime) -> str:
    """``free`` (not in ``sending``), ``held`` (someone is sending it now) or ``expired``.

    A ``sending`` document written before leases existed has no ``lease_expires``: its lease runs
    ``LEASE`` from ``updated``, as it always did."""
    if doc.get("status") != "sending":
        return "free"
    expires = parse_time(doc.get("lease_expires"))
    if expires is None:
        updated = parse_time(doc.get("updated"))
        expires = updated + LEASE if updated is not None else None
    return "expired" if expires is None or wall >= expires else "held"


def due(doc: dict[str, Any], now: datetime) -> bool:
    """Should ``send_pending`` try this alert now? ``now`` is the wall clock (leases)."""
    status = doc.get("status")
    if status == "sent" or int(doc.get("attempts") or 0) >= MAX_ATTEMPTS:
        return False
    if status == "sending":
        return lease_state(doc, now) == "expired"
    return status in RETRYABLE


@contextmanager
def es_call(what: str) -> Iterator[None]:
    """``mapped_errors``, except that a version conflict stays a ConflictError: for optimistic
    concurrency it is an expected outcome the caller handles, not a service failure."""
    from elasticsearch import ConflictError

    from pipeline.es.client import mapped_errors

    try:
        with mapped_errors(what):
            yield
    except ServiceError as exc:
        if isinstance(exc.__cause__, ConflictError):
            raise exc.__cause__ from None
        raise
