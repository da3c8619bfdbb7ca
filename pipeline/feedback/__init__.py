"""Reader feedback on alerts: signed, expiring links per claim, feedback documents, reports.

The links are made by ``feedback_links`` when an email is rendered; the Airflow plugin
(``plugins/newswatch_airflow/feedback.py``) serves them and calls ``record_feedback``;
``feedback_report`` and ``feedback_labels`` read what readers said. Nothing here imports Airflow.
"""

from pipeline.feedback.links import feedback_links, feedback_url
from pipeline.feedback.report import feedback_labels, feedback_report, format_report
from pipeline.feedback.store import (
    Recorded,
    ensure_feedback_index,
    feedback_document,
    feedback_recorded,
    record_feedback,
)
from pipeline.feedback.tokens import (
    KIND_LABELS,
    KINDS,
    ExpiredToken,
    FeedbackToken,
    InvalidToken,
    sign_token,
    verify_token,
)

__all__ = [
    "KINDS",
    "KIND_LABELS",
    "ExpiredToken",
    "FeedbackToken",
    "InvalidToken",
    "Recorded",
    "ensure_feedback_index",
    "feedback_document",
    "feedback_labels",
    "feedback_links",
    "feedback_recorded",
    "feedback_report",
    "feedback_url",
    "format_report",
    "record_feedback",
    "sign_token",
    "verify_token",
]
