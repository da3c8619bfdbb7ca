"""Tell operators when a task has failed for good (after its retries), by email.

Uses the SMTP provider's ``SmtpNotifier`` on the ``smtp_default`` connection, so the message goes
through the same server as the alerts. Recipients come from ``NEWSWATCH_OPERATOR_EMAIL``
(comma-separated); the sender from the connection's ``from_email`` extra. The subject starts with
``[newswatch] Airflow`` so mail filters (and the end-to-end test) tell it apart from alerts.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.providers.smtp.notifications.smtp import SmtpNotifier

TEMPLATE = Path(__file__).parent / "templates" / "failure.html"
DEFAULT_OPERATORS = "operators@localhost"
SUBJECT = "[newswatch] Airflow task failed: {{ ti.dag_id }}.{{ ti.task_id }} ({{ ti.run_id }})"


def operator_recipients() -> list[str]:
    """``NEWSWATCH_OPERATOR_EMAIL`` as a list (read at parse time: an env lookup, no I/O)."""
    raw = os.environ.get("NEWSWATCH_OPERATOR_EMAIL") or DEFAULT_OPERATORS
    return [addr.strip() for addr in raw.split(",") if addr.strip()]


def failure_notifier() -> SmtpNotifier:
    """A notifier for ``on_failure_callback``: one email per finally failed task or run."""
    return SmtpNotifier(to=operator_recipients(), subject=SUBJECT, template=str(TEMPLATE),
                        smtp_conn_id="smtp_default")
